"""Cache hit quality: precision/recall on qqp-dev (test split) for the four verification modes, with
the real MiniLM encoder (models/encoder.int8.onnx) and the learned verifier (models/cache_verifier.onnx);
plus the false-hit rate on benchmarks/data/cache_adversarial.jsonl and the verifier's latency.

Each qqp-dev pair is one (cached prompt = a, new prompt = b) trial: a hit is served when
cosine >= the pre-filter threshold and the verifier (if any) accepts. Precision = served hits that
are true duplicates; recall = true duplicates that are served. The split (50% train / 10%
validation / 40% test by sha256 of the pair) is the one the verifier was trained with
(modelbuild/cache_verifier/data.py); only the test part is reported unless --all. Embeddings are
cached under /tmp (never in the repo); the first run embeds ~73k sentences (minutes on 2 cores).

    .venv/bin/python benchmarks/bench_cache_quality.py [--all] [--prefilter 0.80 --verifier-threshold T]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from modelbuild.cache_verifier import features  # noqa: E402
from modelbuild.cache_verifier.data import load_qqp  # noqa: E402
from modelbuild.cache_verifier.embed import embed_cached  # noqa: E402
from modelbuild.cache_verifier.metrics import best_recall_at_precision, pr  # noqa: E402
from semrouter.cache.config import CacheConfig  # noqa: E402
from semrouter.cache.learned_verify import LearnedVerifier, lex_vector  # noqa: E402

ADV = ROOT / "benchmarks" / "data" / "cache_adversarial.jsonl"
MODES = ("cosine", "rules", "learned", "learned+veto", "learned+rules")


def accept(mode: str, cos: np.ndarray, rules_ok: np.ndarray, score: np.ndarray, c: float, t: float,
           veto_ok: np.ndarray | None = None) -> np.ndarray:
    """cosine / rules (all rule families) / learned / learned+veto (the shipped `verifier: learned`:
    learned + the verifier_veto rule families) / learned+rules (`verifier: both`)."""
    served = cos >= c
    if mode in ("rules", "learned+rules"):
        served &= rules_ok
    if mode == "learned+veto":
        assert veto_ok is not None
        served &= veto_ok
    if mode.startswith("learned"):
        served &= score >= t
    return served


def scores(lv: LearnedVerifier, u: np.ndarray, v: np.ndarray, lex: np.ndarray) -> np.ndarray:
    out = [lv.score_arrays(u[i:i + 4096], v[i:i + 4096], lex[i:i + 4096]) for i in range(0, len(u), 4096)]
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def latency_us(lv: LearnedVerifier, rules_check: object, n: int, reps: int = 300) -> tuple[float, float]:
    """Median µs to score n candidates (lexical features + ONNX), and for the rules on n candidates."""
    rng = np.random.default_rng(0)
    q = rng.normal(size=384).astype(np.float32)
    q /= np.linalg.norm(q)
    vs = rng.normal(size=(n, 384)).astype(np.float32)
    vs /= np.linalg.norm(vs, axis=1, keepdims=True)
    query = "What is the best way to learn Python programming quickly?"
    cached = [f"How can I learn Python programming fast, option {i}?" for i in range(n)]
    t_l, t_r = [], []
    for _ in range(reps):
        t0 = time.perf_counter()
        lv.score(query, q, cached, vs)
        t1 = time.perf_counter()
        for c in cached:
            rules_check(query, c)  # type: ignore[operator]
        t2 = time.perf_counter()
        t_l.append(t1 - t0)
        t_r.append(t2 - t1)
    return statistics.median(t_l) * 1e6, statistics.median(t_r) * 1e6


def main() -> None:
    defaults = CacheConfig()
    ap = argparse.ArgumentParser()
    ap.add_argument("--verifier", default=str(ROOT / "models" / "cache_verifier.onnx"))
    ap.add_argument("--prefilter", type=float, default=defaults.similarity_threshold)
    ap.add_argument("--verifier-threshold", type=float, default=defaults.verifier_threshold)
    ap.add_argument("--rules-threshold", type=float, default=defaults.fallback_similarity_threshold,
                    help="cosine threshold the rules-only modes are also shown at")
    ap.add_argument("--all", action="store_true", help="also report all 40k pairs (train/val included)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    c, t = args.prefilter, args.verifier_threshold

    rules = features.rules_verifier()
    lv = LearnedVerifier(args.verifier, rules)
    t0 = time.perf_counter()
    ps = features.build(load_qqp(), rules, threads=args.threads)
    cos_all, sc_all = ps.cos, scores(lv, ps.u, ps.v, ps.lex)
    rok_all = ps.lex[:, -1] > 0.5  # LEX_FEATURES[-1] = rules_ok
    veto = defaults.verifier_veto
    vok_all = np.array([rules.check(p.b, p.a, veto).ok for p in load_qqp()])
    print(f"qqp-dev features + scores in {time.perf_counter() - t0:.0f}s")

    rows = [json.loads(line) for line in ADV.open()]
    ea = embed_cached([r["a"] for r in rows], threads=args.threads)
    eb = embed_cached([r["b"] for r in rows], threads=args.threads)
    a_cos = (ea * eb).sum(1)
    a_lex = np.stack([lex_vector(rules.signals(r["b"], r["a"])) for r in rows])
    a_sc = lv.score_arrays(eb, ea, a_lex)
    a_rok = a_lex[:, -1] > 0.5
    a_vok = np.array([rules.check(r["b"], r["a"], veto).ok for r in rows])
    same = np.array([bool(r["same_answer"]) for r in rows])
    kinds = np.array([r["kind"] for r in rows])

    parts = [("test", ps.split == "test")] + ([("all", np.ones(len(ps.y), bool))] if args.all else [])
    for name, m in parts:
        cos, sc, rok, vok, y = cos_all[m], sc_all[m], rok_all[m], vok_all[m], ps.y[m]
        print(f"\n== qqp-dev {name}: {m.sum()} pairs, {y.sum()} duplicates ({y.mean():.1%}) ==")
        print(f"\ncosine-only and rules-only vs the cosine threshold:")
        print(f"{'cos thr':>7} {'cosine P':>8} {'R':>6} {'rules P':>8} {'R':>6}")
        for ct in (0.75, 0.80, 0.85, 0.88, 0.90, 0.92, 0.94, 0.96, 0.98):
            a = pr(accept("cosine", cos, rok, sc, ct, t), y)
            b = pr(accept("rules", cos, rok, sc, ct, t), y)
            print(f"{ct:7.2f} {a.precision:8.1%} {a.recall:6.1%} {b.precision:8.1%} {b.recall:6.1%}")
        print(f"\nlearned modes vs the verifier threshold (cosine pre-filter {c}; veto = {'+'.join(veto)}); "
              f"P/R on qqp, FH = adversarial false-hit rate, para = adversarial paraphrase hit rate:")
        lmodes = ("learned", "learned+veto", "learned+rules")
        print(f"{'ver thr':>7} " + " ".join(f"{md + ' P':>15} {'R':>6} {'FH':>6} {'para':>6}" for md in lmodes))
        for vt in (0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95):
            cells = []
            for md in lmodes:
                r = pr(accept(md, cos, rok, sc, c, vt, vok), y)
                adv = accept(md, a_cos, a_rok, a_sc, c, vt, a_vok)
                cells.append(f"{r.precision:15.1%} {r.recall:6.1%} {adv[~same].mean():6.1%} {adv[same].mean():6.1%}")
            print(f"{vt:7.2f} " + " ".join(cells))
        print(f"\nshipped-style settings (adversarial: {(~same).sum()} near-misses, {same.sum()} paraphrases):")
        print(f"{'mode':>14} {'cos thr':>7} {'ver thr':>7} {'served':>6} {'precision':>9} {'recall':>6} "
              f"{'adv false hits':>14} {'para hits':>9}")
        settings = [("cosine", c), ("cosine", args.rules_threshold), ("rules", c), ("rules", args.rules_threshold),
                    ("learned", c), ("learned+veto", c), ("learned+rules", c)]
        for md, ct in settings:
            r = pr(accept(md, cos, rok, sc, ct, t, vok), y)
            adv = accept(md, a_cos, a_rok, a_sc, ct, t, a_vok)
            vt_s = f"{t:.2f}" if md.startswith("learned") else "-"
            print(f"{md:>14} {ct:7.2f} {vt_s:>7} {r.served:6d} {r.precision:9.1%} {r.recall:6.1%} "
                  f"{adv[~same].mean():9.1%} ({adv[~same].sum()}/{(~same).sum()}) "
                  f"{adv[same].mean():5.1%}")
        print("\nbest recall at precision >= 95% (threshold picked on this split; optimistic):")
        for md in MODES:
            if md.startswith("learned"):
                elig = accept(md, cos, rok, np.ones_like(sc), c, 0.0, vok)
                thr, r = best_recall_at_precision(sc, elig, y, 0.95)
                what = f"cos >= {c}, verifier >= {thr:.3f}"
            else:
                elig = accept(md, cos, rok, sc, -1.0, 0.0)
                thr, r = best_recall_at_precision(cos, elig, y, 0.95)
                what = f"cos >= {thr:.3f}"
            print(f"{md:>14}: precision {r.precision:.1%} recall {r.recall:.1%} ({what})")

    print(f"\nadversarial by kind at the shipped settings (cos >= {c}, verifier >= {t}):")
    print(f"{'kind':>10} {'pairs':>5} {'mean cos':>8} {'cos>=c':>6} {'learned':>7} {'+veto':>6} {'+rules':>6} "
          f"{'rules@'}{args.rules_threshold}")
    for k in sorted(set(kinds)):
        m = kinds == k
        print(f"{k:>10} {m.sum():5d} {a_cos[m].mean():8.3f} {(a_cos[m] >= c).sum():6d} "
              f"{accept('learned', a_cos, a_rok, a_sc, c, t)[m].sum():7d} "
              f"{accept('learned+veto', a_cos, a_rok, a_sc, c, t, a_vok)[m].sum():6d} "
              f"{accept('learned+rules', a_cos, a_rok, a_sc, c, t)[m].sum():6d} "
              f"{accept('rules', a_cos, a_rok, a_sc, args.rules_threshold, t)[m].sum():6d}")

    print("\nverifier latency (median of 300, this machine, 1 intra-op thread):")
    for n in (1, 5):
        l_us, r_us = latency_us(lv, rules.check, n)
        print(f"  {n} candidate(s): learned (lexical features + ONNX) {l_us:.0f} us; rules {r_us:.0f} us")


if __name__ == "__main__":
    main()
