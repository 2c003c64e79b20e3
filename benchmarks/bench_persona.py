"""Persona / role-play prompts (benchmarks/data/persona_prompts.jsonl, written here): refused by the head alone vs the
head + jailbreak exemplar memory, as the user's prompt and as an earlier user turn.

    .venv/bin/python benchmarks/bench_persona.py [--models models] [--shared]

The set: benign persona requests (game masters, language tutors, interview practice, customer-service simulations,
fiction characters told to stay in character, product-demo personas told not to say they are an AI) and persona
jailbreaks (a persona with no rules, a fiction or game frame around a harmful request), each marked `half` tune /
check (alternating rows): a change is chosen on the tune half and the check half is its held-out number.
Placements: `user` (the last user message), `earlier` (the first user turn, then an assistant reply and an ordinary
question: guard12's `earlier_user` read). Refused = safety_verdict at the default thresholds of each config.
`--shared`: also the shared dev set's role-play and harmful rows (per origin, user placement; *not held out*: the
shipped head and memory were built on every dev row). Prints tables; writes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.machine import describe  # noqa: E402
from semrouter.config.schema import Config  # noqa: E402
from semrouter.decision.safety import safety_verdict  # noqa: E402
from semrouter.signals.onnx.analyzer import OnnxAnalyzer  # noqa: E402

DATA = ROOT / "benchmarks" / "data" / "persona_prompts.jsonl"
SHARED = ROOT.parent / "shared" / "data" / "jailbreak-dev.jsonl.gz"
ASSISTANT = "Sure, let's begin."
FOLLOW_UP = "What is the capital of Peru?"


def _cfg(memory: bool, extra: dict | None = None) -> Config:
    jb = {"memory": memory, **(extra or {})}
    return Config.model_validate({"models": [{"name": "m", "endpoints": [{"address": "127.0.0.1", "port": 9}]}],
                                  "routing": {"default_model": "m"}, "signals": {"jailbreak": jb}})


def read_set(path: Path = DATA) -> list[dict]:
    """The persona rows: text, label (benign / jailbreak), kind, half (tune / check)."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def _run(args: argparse.Namespace) -> None:
    variants = {"head": _cfg(False), "head+memory": _cfg(True)}
    for spec in args.variant:  # name=key:value,key:value (signals.jailbreak fields, memory on)
        name, _, kv = spec.partition("=")
        extra = {k: json.loads(v) for k, v in (p.split(":", 1) for p in kv.split(",") if p)}
        variants[name] = _cfg(True, extra)
    ans = {n: await OnnxAnalyzer.create(c.signals.model_copy(update={"model_dir": str(args.models)}))
           for n, c in variants.items()}
    try:
        rows = read_set()
        counts: dict[tuple, list[int]] = defaultdict(lambda: [0] * (len(variants) + 1))
        for r in rows:
            for place in ("user", "earlier"):
                text, extra = (r["text"], ()) if place == "user" else (FOLLOW_UP, (r["text"],))
                line = []
                for j, (n, an) in enumerate(ans.items()):
                    a = await an.analyze(text, frozenset({"jailbreak"}), None, extra)
                    hit = safety_verdict(variants[n], a, None).blocked_by is not None
                    line.append(f"{a.safety.get('jailbreak', 0.0):.4f}{'*' if hit else ' '}")
                    for key in ((r["label"], place, r["half"]), (r["label"], place, "all")):
                        counts[key][j] += hit
                for key in ((r["label"], place, r["half"]), (r["label"], place, "all")):
                    counts[key][-1] += 1
                if args.verbose:
                    print(f"{r['label'][:6]:6s} {r['half']:5s} {place:7s} {'  '.join(line)}  {r['text'][:70]}")
        print(f"\n## Persona set (written here): refused, per config ({', '.join(variants)})")
        print(f"{'label':10s} {'placement':9s} {'half':6s} {'n':>4s} " + " ".join(f"{n:>14s}" for n in variants))
        for key in sorted(counts):
            c = counts[key]
            print(f"{key[0]:10s} {key[1]:9s} {key[2]:6s} {c[-1]:4d} " +
                  " ".join(f"{c[j]:3d} ({100 * c[j] / c[-1]:5.1f}%)" for j in range(len(variants))))
        if args.shared:
            groups: dict[tuple[str, str], list[str]] = defaultdict(list)
            with gzip.open(SHARED, "rt") as f:
                for line in f:
                    d = json.loads(line)
                    if d["label"] == "harmful" or "roleplay" in d["origin"]:
                        groups[(d["origin"], d["label"])].append(d["text"])
            print("\n## Shared dev rows (user placement; NOT held out: the shipped files saw them)")
            for (origin, label), texts in sorted(groups.items()):
                n = [0] * len(variants)
                for t in texts:
                    for j, (name, an) in enumerate(ans.items()):
                        a = await an.analyze(t, frozenset({"jailbreak"}))
                        n[j] += safety_verdict(variants[name], a, None).blocked_by is not None
                print(f"{origin:24s} {label:9s} {len(texts):4d} " +
                      " ".join(f"{n[j]:3d} ({100 * n[j] / len(texts):5.1f}%)" for j in range(len(variants))))
    finally:
        for an in ans.values():
            await an.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=Path, default=ROOT / "models")
    ap.add_argument("--shared", action="store_true")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--variant", nargs="*", default=[], help="name=key:json,... extra signals.jailbreak settings")
    args = ap.parse_args()
    print(f"# bench_persona: {describe()}")
    asyncio.run(_run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
