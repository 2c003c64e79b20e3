"""Fine-tune the cross-encoder cache verifier (model.py) on the training part of the mix and save its adapters.

Data: modelbuild/cache_verifier/mix.py, part "train" (qqp sample, STS in 11 languages from stsb/train,
negations from the two training origins, antonym paraphrases, chat rewrites + near-miss edits of the training
sources' prompts) plus more rows of the same training sources (`training_pairs`). Validation, test and the
within-source part are not read here (thresholds: choose.py, on validation).
Batches are drawn with probability ~ 1 / sqrt(size of the pair's (kind, label) group), so the small kinds
are seen more often without repeating them dozens of times (8 batches at a time, grouped by length); each pair is shown in a random order ((a, b) or
(b, a)): the verifier is symmetric in use. Frozen MiniLM-L6 (embeddings included), LoRA rank 8 on every Linear of
the six layers, a 768 -> 256 -> 2 head; AdamW, linear warm-up then decay, fixed seeds, CPU.

    .venv/bin/python -m modelbuild.cache_verifier.cross.train [--steps 450] [--threads 1]

Writes modelbuild/cache_verifier/cross/adapter.safetensors (adapters + head, fp16, ~1 MB) and the training
part of cross.json (the thresholds there are written by choose.py). ~40 minutes on 2 busy cores (load 6-11).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from modelbuild.cache_verifier.cross.data import pair_tokenizer
from modelbuild.cache_verifier.mix import MixPair, load_mix, within_source_pairs

HERE = Path(__file__).resolve().parent
ADAPTER = HERE / "adapter.safetensors"
SIDECAR = HERE / "cross.json"


def training_pairs(seed: int, extra_sts_per_lang: int, extra_qqp: int) -> list[MixPair]:
    """The mix's train part plus more rows of the same training sources: STS pairs of origin stsb/train
    (`extra_sts_per_lang` per language, middle scores dropped as in mix.py) and qqp train-split pairs
    (`extra_qqp`), never a row of the mix (any part) or of the within-source evaluation part
    (mix.within_source_pairs), so both stay unseen."""
    import gzip
    import random

    from modelbuild.cache_verifier.data import QQP, load_qqp, split_of
    from modelbuild.cache_verifier.mix import PARAPHRASE

    mix = load_mix(seed)
    held = {(p.a, p.b) for p in mix} | {(p.a, p.b) for p in within_source_pairs(seed)}
    out = [p for p in mix if p.part == "train"]
    sts: dict[str, list[MixPair]] = {}
    with gzip.open(PARAPHRASE, "rt", encoding="utf-8") as f:
        for r in map(json.loads, f):
            if (r["kind"] == "sts" and r["origin"] == "stsb/train" and not 2.5 < r["score"] < 4.0
                    and (r["a"], r["b"]) not in held):
                sts.setdefault(r["lang"], []).append(
                    MixPair(r["a"], r["b"], r["score"] >= 4.0, f"sts_{r['lang']}", "train"))
    for _lang, xs in sorted(sts.items()):
        out += random.Random(seed + 7).sample(xs, min(extra_sts_per_lang, len(xs)))
    qqp = [MixPair(p.a, p.b, p.duplicate, "qqp", "train") for p in load_qqp(QQP)
           if split_of(p) == "train" and (p.a, p.b) not in held]
    out += random.Random(seed + 7).sample(qqp, min(extra_qqp, len(qqp)))
    return out


def sample_weights(kinds: list[str], ys: list[bool]) -> np.ndarray:
    """Per-pair sampling probability ~ group size ** -0.5 (group = kind and label), normalised to sum 1."""
    keys = [f"{k}:{int(y)}" for k, y in zip(kinds, ys, strict=True)]
    _, inv, counts = np.unique(np.array(keys), return_inverse=True, return_counts=True)
    w = counts[inv].astype(np.float64) ** -0.5
    return w / w.sum()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=450)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=16.0)
    ap.add_argument("--max-len", type=int, default=96)
    ap.add_argument("--extra-sts", type=int, default=1500, help="more stsb/train pairs per language")
    ap.add_argument("--extra-qqp", type=int, default=6000, help="more qqp train-split pairs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="1: on 2 shared cores 2 threads were 3x slower")
    ap.add_argument("--max-minutes", type=float, default=0.0,
                    help="stop after this many minutes of training (0 = never; the steps done are recorded)")
    ap.add_argument("--out", default=str(ADAPTER))
    args = ap.parse_args()

    import torch
    from safetensors.torch import save_file

    from modelbuild.cache_verifier.cross.model import CrossEncoder

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    train = training_pairs(args.seed, args.extra_sts, args.extra_qqp)
    probs = sample_weights([p.kind for p in train], [p.y for p in train])
    tok = pair_tokenizer(args.max_len)
    net = CrossEncoder(rank=args.rank, alpha=args.alpha)
    params = [p for p in net.parameters() if p.requires_grad]
    print(f"{len(train)} training pairs; {sum(p.numel() for p in params)} trainable parameters", flush=True)
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    warm = max(args.steps // 20, 1)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (args.steps - s) / max(args.steps - warm, 1))))
    t0 = time.perf_counter()
    net.train()
    running = []
    lengths = np.array([len(p.a) + len(p.b) for p in train])
    queue: list[np.ndarray] = []
    done = 0
    for step in range(args.steps):
        if args.max_minutes and time.perf_counter() - t0 > 60 * args.max_minutes:
            print(f"time limit: stopped after {step} steps", flush=True)
            break
        done = step + 1
        if not queue:  # 8 batches at a time, grouped by length (less padding), in random order
            draw = rng.choice(len(train), size=8 * args.batch, p=probs)
            draw = draw[np.argsort(lengths[draw], kind="stable")]
            queue = [draw[i:i + args.batch] for i in range(0, len(draw), args.batch)]
            rng.shuffle(queue)
        idx = queue.pop()
        flip = rng.random(args.batch) < 0.5
        firsts = [train[i].a if f else train[i].b for i, f in zip(idx, flip, strict=True)]
        seconds = [train[i].b if f else train[i].a for i, f in zip(idx, flip, strict=True)]
        ids, mask, types = (torch.from_numpy(x) for x in tok(firsts, seconds))
        y = torch.tensor([train[i].y for i in idx], dtype=torch.long)
        loss = torch.nn.functional.cross_entropy(net(ids, mask, types), y)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        running.append(float(loss.detach()))
        if (step + 1) % 25 == 0:
            el = time.perf_counter() - t0
            print(f"step {step + 1}/{args.steps} loss {np.mean(running[-50:]):.4f} "
                  f"{el:.0f}s ({el / (step + 1):.2f} s/step)", flush=True)
    state = {k: v.to(torch.float16).contiguous() for k, v in net.trainable_state().items()}
    save_file(state, args.out)
    meta = json.loads(SIDECAR.read_text()) if SIDECAR.is_file() else {}
    meta["model"] = {**net.config, "max_len": args.max_len, "steps": args.steps, "steps_done": done,
                     "batch": args.batch,
                     "lr": args.lr, "seed": args.seed, "pooling": "concat(cls, mean)",
                     "input": "[CLS] new prompt [SEP] cached prompt [SEP] (trained in both orders)"}
    meta["data"] = (f"mix.py part train (qqp, STS 11 languages, negation, antonym paraphrase, chat rewrites) + "
                    f"{args.extra_sts} more stsb/train pairs per language + {args.extra_qqp} more qqp train-split "
                    "pairs (none of the mix's or the within-source part's rows)")
    meta["train_pairs"] = len(train)
    meta["train_seconds"] = round(time.perf_counter() - t0)
    SIDECAR.write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {args.out} ({Path(args.out).stat().st_size / 1e6:.2f} MB) in {time.perf_counter() - t0:.0f}s")


if __name__ == "__main__":
    main()
