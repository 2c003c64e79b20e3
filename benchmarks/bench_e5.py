"""One multilingual-encoder pass (models/e5, int8) against one MiniLM pass (models/, int8): latency at 30 and 200
tokens, batch 1, one intra-op thread, interleaved blocks in one process (this box's load changes by the minute).

    .venv/bin/python benchmarks/bench_e5.py [--blocks 10] [--per-block 20]

Both graphs get the same shapes (token ids drawn from each vocabulary's ordinary pieces, full attention mask);
the e5 figure includes its category head (`e5_category_head.onnx`) when present, as the router runs it.
Prints p50 / p90 in ms per encoder and length, and the e5 / MiniLM ratio of the p50s.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[1]


def _session(path: Path) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, default=10)
    ap.add_argument("--per-block", type=int, default=20)
    args = ap.parse_args(argv)
    e5 = _session(ROOT / "models" / "e5" / "encoder.int8.onnx")
    head_path = ROOT / "models" / "e5" / "e5_category_head.onnx"
    head = _session(head_path) if head_path.is_file() else None
    mini = _session(ROOT / "models" / "encoder.int8.onnx")
    rng = np.random.default_rng(0)
    times: dict[str, list[float]] = {}
    for _ in range(args.blocks):
        for n in (30, 200):
            for name in ("minilm", "e5"):
                lo, hi, start, end = (1000, 20000, 101, 102) if name == "minilm" else (1000, 200000, 0, 2)
                ids = np.concatenate([[start], rng.integers(lo, hi, n - 2), [end]]).astype(np.int64)[None, :]
                feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
                key = f"{name} {n} tokens"
                for i in range(args.per_block + 1):
                    t0 = time.perf_counter()
                    if name == "e5":
                        emb = e5.run(["sentence_embedding"], feed)[0]
                        if head is not None:
                            head.run(["probs"], {"embedding": emb})
                    else:
                        mini.run(["sentence_embedding"], feed)
                    if i:  # the first run of a block warms the caches
                        times.setdefault(key, []).append((time.perf_counter() - t0) * 1e3)
    out = {k: {"p50_ms": round(float(np.percentile(v, 50)), 2), "p90_ms": round(float(np.percentile(v, 90)), 2),
               "n": len(v)} for k, v in times.items()}
    for n in (30, 200):
        out[f"ratio {n}"] = round(out[f"e5 {n} tokens"]["p50_ms"] / out[f"minilm {n} tokens"]["p50_ms"], 2)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
