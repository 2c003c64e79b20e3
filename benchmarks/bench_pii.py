"""PII detection quality and latency on held-out synthetic data.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_pii.py [--n 1000] [--fp32]

Held-out set: modelbuild/pii/datagen.py TEST templates (none used in training), held-out part of
the hand-written name lists, a different seed. Recall/precision per type (exact span, and
"overlap" = any overlap with a gold span of that type); false positives on look-alike sentences
(order ids, ISBNs, versions, tracking numbers, product codes, timestamps); detect() latency with
the encoder output given (what the router pays on top of its one encoder pass).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from faker import Faker  # noqa: E402

from modelbuild.pii.datagen import make_examples, lookalike_texts  # noqa: E402
from semrouter.signals.pii import ALL_TYPES, PIIConfig, PIIDetector, detect_patterns  # noqa: E402
from semrouter.signals.pii.encode import TokenEmbedder  # noqa: E402


def pct(a: int, b: int) -> str:
    return f"{100 * a / b:.1f}%" if b else "n/a"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000, help="held-out sentences")
    ap.add_argument("--lookalikes", type=int, default=1000)
    ap.add_argument("--models", default=str(ROOT / "models"))
    ap.add_argument("--head-dir", default=str(ROOT / "modelbuild" / "artifacts"))
    ap.add_argument("--fp32", action="store_true", help="use encoder.onnx instead of encoder.int8.onnx")
    args = ap.parse_args()

    embedder = TokenEmbedder.load(args.models, int8=not args.fp32, threads=1)
    detector = PIIDetector.load(args.head_dir, PIIConfig())
    examples = make_examples(args.n, heldout=True, seed=7)

    gold_n, tp_exact, tp_overlap, pred_n, pred_ok = Counter(), Counter(), Counter(), Counter(), Counter()
    detect_ms: list[float] = []
    for ex in examples:
        emb, offsets = embedder.embed(ex.text)
        t0 = time.perf_counter()
        pred = detector.detect(ex.text, emb, offsets)
        detect_ms.append((time.perf_counter() - t0) * 1000)
        for s, e, t in ex.spans:
            gold_n[t] += 1
            tp_exact[t] += any((p.start, p.end, p.type) == (s, e, t) for p in pred)
            tp_overlap[t] += any(p.type == t and p.start < e and s < p.end for p in pred)
        for p in pred:
            pred_n[p.type] += 1
            pred_ok[p.type] += any((p.start, p.end) == (s, e) and p.type == t for s, e, t in ex.spans)

    enc = "fp32" if args.fp32 else "int8"
    print(f"\n### Held-out synthetic set: {args.n} sentences, encoder {enc}\n")
    print("| type | gold | recall (exact) | recall (overlap) | precision (exact) |")
    print("|---|---:|---:|---:|---:|")
    for t in ALL_TYPES:
        print(f"| {t} | {gold_n[t]} | {pct(tp_exact[t], gold_n[t])} | {pct(tp_overlap[t], gold_n[t])} "
              f"| {pct(pred_ok[t], pred_n[t])} |")

    fp_by_type: Counter[str] = Counter()
    texts_with_fp = 0
    looks = lookalike_texts(args.lookalikes)
    for text in looks:
        emb, offsets = embedder.embed(text)
        pred = detector.detect(text, emb, offsets)
        texts_with_fp += bool(pred)
        for p in pred:
            fp_by_type[p.type] += 1
    structured_fp = sum(v for k, v in fp_by_type.items() if k not in ("PERSON", "STREET_ADDRESS"))
    print(f"\n### Look-alikes: {len(looks)} sentences (order ids, ISBN/EAN, versions, tracking, product codes, timestamps)\n")
    print(f"- sentences with any entity: {texts_with_fp} ({pct(texts_with_fp, len(looks))})")
    print(f"- structured false positives: {structured_fp}; learned false positives: "
          f"{fp_by_type['PERSON']} PERSON, {fp_by_type['STREET_ADDRESS']} STREET_ADDRESS")

    # Phone formats we did not write: Faker's own en_US / en_GB / de_DE / fr_FR numbers.
    print("\n### Phone formats from Faker (not our generator), patterns only\n")
    print("| locale | found |")
    print("|---|---:|")
    for loc in ("en_US", "en_GB", "de_DE", "fr_FR"):
        f = Faker(loc)
        f.seed_instance(5)
        hits = 0
        for _ in range(300):
            phone = f.phone_number()
            got = detect_patterns(f"Please call me at {phone} tomorrow.", {"PHONE_NUMBER"})
            hits += any(e.value == phone for e in got)
        print(f"| {loc} | {pct(hits, 300)} |")

    texts = [ex.text for ex in examples[:300]]
    pattern_ms = []
    for text in texts:
        t0 = time.perf_counter()
        detect_patterns(text)
        pattern_ms.append((time.perf_counter() - t0) * 1000)
    embed_ms = []
    for text in texts[:200]:
        t0 = time.perf_counter()
        embedder.embed(text)
        embed_ms.append((time.perf_counter() - t0) * 1000)
    q = lambda xs, p: statistics.quantiles(xs, n=100)[p - 1]  # noqa: E731
    print("\n### Latency per text (1 thread)\n")
    print("| step | p50 ms | p95 ms |")
    print("|---|---:|---:|")
    print(f"| detect() with token embeddings (patterns + head) | {q(detect_ms, 50):.3f} | {q(detect_ms, 95):.3f} |")
    print(f"| detect_patterns() only | {q(pattern_ms, 50):.3f} | {q(pattern_ms, 95):.3f} |")
    print(f"| for reference: encoder {enc} pass (not part of detect) | {q(embed_ms, 50):.2f} | {q(embed_ms, 95):.2f} |")


if __name__ == "__main__":
    main()
