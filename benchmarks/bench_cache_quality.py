"""Cache hit quality per kind, on the held-out parts of the verifier's mix, with the shipped settings.

Each pair is one trial: the cached prompt `a` is in the cache, the new prompt `b` arrives; a hit is served
when cosine >= similarity_threshold, the code/quoted text match (verbatim.py), the `verifier_veto` rule
families accept and the learned verifier (models/cache_verifier.onnx) scores >= verifier_threshold: the
same decision as semrouter/cache/judge.py, with CacheConfig's defaults (an answer-neutral rewording,
semrouter/cache/equivalent.py, is served without the learned score; the verifier threshold is
verifier_threshold_other_languages when the language signal, semrouter/signals/language.py with its default
settings, detects the new prompt as not English). Data (modelbuild/cache_verifier/
mix.py; none of it trained or tuned on): qqp-dev test split; paraphrase-dev origin stsb/test (11 languages)
and the negation origins left out of training; chat-style rewrites of prompts from sources left out of
training (tldr, arena-hard, mmlu-pro); plus benchmarks/data/cache_adversarial.jsonl (hand-written).
`--part within`: unseen rows of the training sources instead (same sources, rows never trained on); `--part
chatval`: more chat near-misses of the training sources (mix.chat_validation_pairs), where rules were chosen.
`--cross models/cache_verifier_cross.onnx`: the cross-encoder verifier (verifier: cross; thresholds
cross_threshold / cross_threshold_other_languages) scores instead of the bi-encoder model (scores cached under
build/xenc/), capped at the bi-encoder model's score where that is under cross_guard_threshold (the router's
opt-in guard, off by default; `--guard 0.4`: with it) and zeroed where the router refuses a one-run substitution
(cache.cross_long_substitution_words / cross_short_substitution_words and the near-synonym exception;
`--short-substitution N --synonym C --synonym-score S --near P` to try other values); a pair longer than the
cross-encoder's training length needs cross_threshold_long when that is higher. `--no-rules`: the model alone (no
veto family, no rewording rule, no guard, no substitution refusal; verbatim still applies).
"same" rows are hit rates (want high), "diff" rows false-hit rates (want low). Embeddings are cached
under /tmp (never in the repo).

    .venv/bin/python benchmarks/bench_cache_quality.py [--part test|val|within] [--cross MODEL] [--no-rules]
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
from modelbuild.cache_verifier.embed import embed_cached  # noqa: E402
from modelbuild.cache_verifier.metrics import best_recall_at_precision, pr  # noqa: E402
from modelbuild.cache_verifier.mix import chat_validation_pairs, load_mix, within_source_pairs  # noqa: E402
from modelbuild.cache_verifier.train import Mixed, kind_groups  # noqa: E402
from modelbuild.cache_verifier.cross.scores import cross_scores, refused  # noqa: E402
from semrouter.cache.config import CacheConfig  # noqa: E402
from semrouter.cache.cross_verify import CrossVerifier  # noqa: E402
from semrouter.cache.verify import Verifier  # noqa: E402
from semrouter.cache.equivalent import equivalent  # noqa: E402
from semrouter.cache.learned_verify import LearnedVerifier, lex_vector  # noqa: E402
from semrouter.cache.verbatim import verbatim_differs  # noqa: E402
from semrouter.signals.language import LanguageConfig, LanguageDetector  # noqa: E402

ADV = ROOT / "benchmarks" / "data" / "cache_adversarial.jsonl"
RULES_COS = 0.92  # the rules-only baseline's cosine threshold (fallback_similarity_threshold)


def scores(lv: LearnedVerifier, u: np.ndarray, v: np.ndarray, lex: np.ndarray,
           align: np.ndarray | None = None) -> np.ndarray:
    out = [lv.score_arrays(u[i:i + 4096], v[i:i + 4096], lex[i:i + 4096],
                           None if align is None else align[i:i + 4096]) for i in range(0, len(u), 4096)]
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


def cross_latency_ms(cv: CrossVerifier, n: int, reps: int = 300) -> tuple[float, float]:
    """(p50, p99) ms of one cross-encoder run over n (prompt, candidate) pairs of chat length."""
    query = "What is the best way to learn Python programming quickly?"
    cached = [f"How can I learn Python programming fast, option {i}?" for i in range(n)]
    cv.score(query, cached)
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        cv.score(query, cached)
        ts.append((time.perf_counter() - t0) * 1e3)
    return float(np.percentile(ts, 50)), float(np.percentile(ts, 99))


DEMO = (("What are the main renewable energy sources?", "Which renewable energy sources are the most important?"),
        ("How tall is the highest mountain in Africa?", "How tall is the tallest mountain in Africa?"))


def guarded(cross: np.ndarray, bi: np.ndarray, cfg: CacheConfig) -> np.ndarray:
    """The router's cross-encoder score: capped at the bi-encoder's where that is under cross_guard_threshold."""
    return np.where(bi < cfg.cross_guard_threshold, np.minimum(cross, bi), cross)


def demo(cross: str, lv: LearnedVerifier, rules: Verifier, cfg: CacheConfig) -> None:
    """The issue's demo pair (and one more): cosine, score, verdict with the given settings."""
    print("\ndemo pairs (cached -> new):")
    for a, b in DEMO:
        ea, eb = embed_cached([a], threads=1), embed_cached([b], threads=1)
        cos = float((ea * eb).sum())
        if cross:
            sc = float(guarded(cross_scores([b], [a], Path(cross)), lv.score(b, eb[0], [a], ea), cfg)[0])
        else:
            sc = float(lv.score(b, eb[0], [a], ea)[0])
        ok = rules.check(b, a, cfg.verifier_veto).ok and not verbatim_differs(b, a)
        hit = cos >= cfg.similarity_threshold and ok and (sc >= cfg.verifier_threshold_for("en") or (
            cfg.accept_equivalent and equivalent(b, a, rules.common_words)))
        print(f"  {a!r} -> {b!r}: cosine {cos:.3f}, score {sc:.3f}, {'hit' if hit else 'miss'}")


def main() -> None:
    cfg = CacheConfig()
    ap = argparse.ArgumentParser()
    ap.add_argument("--verifier", default=str(ROOT / "models" / "cache_verifier.onnx"))
    ap.add_argument("--part", default="test", choices=("test", "val", "within", "chatval"),
                    help="within = unseen rows of the training sources (mix.within_source_pairs; label them so); "
                    "chatval = more chat near-misses of the training sources (mix.chat_validation_pairs: for rules)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--thresholds", default="",
                    help="T,T_OTHER: verifier_threshold and verifier_threshold_other_languages instead of the config's "
                    "(e.g. 0.92,0.76 for models/cache_verifier_align.onnx, its validation choice)")
    ap.add_argument("--cross", default="", help="the cross-encoder model to score with (verifier: cross)")
    ap.add_argument("--no-rules", action="store_true", help="no veto families, no rewording rule, no guard (verbatim "
                    "stays)")
    ap.add_argument("--no-guard", action="store_true", help="--cross without the bi-encoder guard (threshold 0)")
    ap.add_argument("--guard", type=float, default=None, help="--cross with cross_guard_threshold T (e.g. 0.4)")
    ap.add_argument("--short-substitution", type=int, default=None,
                    help="--cross with cache.cross_short_substitution_words N instead of the config's")
    ap.add_argument("--synonym", type=float, default=None, help="--cross with cross_substitution_synonym_cosine "
                    "T instead of the config's (negative: none)")
    ap.add_argument("--synonym-score", type=float, default=None,
                    help="--cross with cross_substitution_synonym_score S instead of the config's")
    ap.add_argument("--near", type=float, default=None, help="--cross with cross_substitution_synonym_probability "
                    "P instead of the config's (negative: none)")
    ap.add_argument("--veto", default=None, help="comma-separated verifier_veto families instead of the config's")
    args = ap.parse_args()
    if args.cross:
        cfg = cfg.model_copy(update={"verifier": "cross"})
    if args.short_substitution is not None:
        cfg = cfg.model_copy(update={"cross_short_substitution_words": args.short_substitution})
    if args.synonym_score is not None:
        cfg = cfg.model_copy(update={"cross_substitution_synonym_score": args.synonym_score})
    if args.synonym is not None:
        cfg = cfg.model_copy(update={"cross_substitution_synonym_cosine": args.synonym if args.synonym >= 0
                                     else None})
    if args.near is not None:
        cfg = cfg.model_copy(update={"cross_substitution_synonym_probability": args.near if args.near >= 0 else None})
    if args.veto is not None:
        cfg = cfg.model_copy(update={"verifier_veto": tuple(x for x in args.veto.split(",") if x)})
    if args.guard is not None:
        cfg = cfg.model_copy(update={"cross_guard_threshold": args.guard})
    if args.no_rules or args.no_guard:
        cfg = cfg.model_copy(update={"cross_guard_threshold": 0.0})
    if args.no_rules:
        cfg = cfg.model_copy(update={"verifier_veto": (), "accept_equivalent": False})
    if args.thresholds:
        t_en, t_other = (float(x) for x in args.thresholds.split(","))
        names = (("cross_threshold", "cross_threshold_other_languages") if args.cross
                 else ("verifier_threshold", "verifier_threshold_other_languages"))
        cfg = cfg.model_copy(update=dict(zip(names, (t_en, t_other), strict=True)))
    c, t = cfg.similarity_threshold, cfg.verifier_threshold
    rules = features.rules_verifier()
    lv = LearnedVerifier(args.verifier, rules, ROOT / "models")

    t0 = time.perf_counter()
    pairs = (within_source_pairs() if args.part == "within" else chat_validation_pairs() if args.part == "chatval"
             else load_mix())
    mix = Mixed(pairs, args.threads, align=lv.wants_align, veto=cfg.verifier_veto)  # alignment: cached under build/
    m = mix.part == args.part
    cos, y, kind = mix.cos[m], mix.y[m], mix.kind[m]
    picked = [pairs[i] for i in np.nonzero(m)[0]]
    if args.cross:
        sc = cross_scores([p.b for p in picked], [p.a for p in picked], Path(args.cross), progress=True)
        sc = guarded(sc, scores(lv, mix.u[m], mix.v[m], mix.lex[m]), cfg)
        if not args.no_rules:
            sc = np.where(refused([p.b for p in picked], [p.a for p in picked], cfg, Path(args.cross)), 0.0, sc)
    else:
        sc = scores(lv, mix.u[m], mix.v[m], mix.lex[m], None if mix.align is None else mix.align[m])
    veto_ok = mix.veto_ok[m]
    if args.no_rules:
        veto_ok = np.array([not verbatim_differs(p.b, p.a) for p in picked])
    rules_ok = mix.lex[m][:, -1] > 0.5  # LEX_FEATURES[-1] = rules_ok (every rule family)
    print(f"{m.sum()} {args.part} pairs, features + scores in {time.perf_counter() - t0:.0f}s")
    equiv = mix.equiv[m] & cfg.accept_equivalent
    detect = LanguageDetector(LanguageConfig()).detect
    lang = [detect(b) for b in mix.b[m]]
    t = np.array([cfg.verifier_threshold_for(x) for x in lang], dtype=np.float32)  # per pair
    if args.cross:  # pairs over the cross-encoder's training length: cross_threshold_long when higher
        over = CrossVerifier(args.cross).long_pairs_of([p.b for p in picked], [p.a for p in picked])
        t = np.where(over, np.maximum(t, cfg.cross_threshold_long), t).astype(np.float32)
        print(f"pairs over the training length: {over.mean():.1%} (threshold {cfg.cross_threshold_long} when "
              "higher)")
    print(f"new prompt detected as not English: {np.mean([x not in ('en', 'und') for x in lang]):.1%} of pairs")
    shipped = (cos >= c) & veto_ok & ((score_ok := sc >= t) | equiv)
    cos_only = cos >= RULES_COS
    rules_only = cos_only & rules_ok
    guard_note = f", guard {cfg.cross_guard_threshold}" if args.cross and cfg.cross_guard_threshold else ""
    if args.cross and not args.no_rules:
        guard_note += (f", substitutions refused (long {cfg.cross_long_substitution_words}, short "
                       f"{cfg.cross_short_substitution_words} words, near-synonym exception "
                       f"cosine {cfg.cross_substitution_synonym_cosine} / score "
                       f"{cfg.cross_substitution_synonym_score} / near-synonym model "
                       f"{cfg.cross_substitution_synonym_probability})")
    print(f"\nper kind ({args.part}; shipped = cos >= {c}, verbatim + veto {'+'.join(cfg.verifier_veto)}, "
          f"{'cross-encoder' if args.cross else 'learned'} >= {cfg.verifier_threshold_for('en')} (other languages "
          f"{cfg.verifier_threshold_for('de')}){guard_note}"
          f"{' or equivalent rewording' if cfg.accept_equivalent else ''}); "
          "same = hit rate, diff = false-hit rate")
    print(f"{'kind':>28} {'pairs':>6} {'mean cos':>8} {'cos>=' + str(RULES_COS):>9} {'rules':>7} {'learned':>7} "
          f"{'equiv':>7} {'shipped':>7}")
    groups = kind_groups(kind, y)
    for g, gm in groups.items():
        print(f"{g:>28} {gm.sum():6d} {cos[gm].mean():8.3f} {cos_only[gm].mean():9.1%} {rules_only[gm].mean():7.1%} "
              f"{((cos >= c) & score_ok)[gm].mean():7.1%} {((cos >= c) & veto_ok & equiv)[gm].mean():7.1%} "
              f"{shipped[gm].mean():7.1%}")

    chat_para = np.isin(kind, [f"chat_{k}" for k in ("typo", "casing", "shorthand", "polite", "reorder", "question",
                                                    "synonym", "code_reworded")]) & y
    sts_en = (kind == "sts_en") & y
    sts_other = np.char.startswith(kind.astype(str), "sts_") & (kind != "sts_en") & y
    near = {g: gm for g, gm in groups.items() if g.endswith(":diff") and not g.startswith(("qqp", "chat_unrelated"))
            and not g.startswith("sts_")}
    unrelated = (kind == "chat_unrelated")
    q = kind == "qqp"
    qr = pr(shipped[q], y[q])
    thr, best = best_recall_at_precision(sc[q], (cos[q] >= c) & veto_ok[q], y[q], 0.95)
    print(f"\ntargets ({args.part}, shipped settings):")
    print(f"  chat paraphrase hit rate        {shipped[chat_para].mean():6.1%}  (target >= 80%)")
    print(f"  STS-equivalent English          {shipped[sts_en].mean():6.1%}  (target >= 60%)")
    print(f"  STS-equivalent other languages  {shipped[sts_other].mean():6.1%}  (target >= 40%)")
    worst = max(near, key=lambda g: shipped[near[g]].mean())
    print(f"  worst near-miss kind            {shipped[near[worst]].mean():6.1%}  ({worst}; target <= 5% each)")
    print(f"  unrelated prompts               {shipped[unrelated].mean():6.1%}  (target <= 2%)")
    print(f"  STS different (score <= 2.5)    {shipped[np.char.startswith(kind.astype(str), 'sts_') & ~y].mean():6.1%}")
    print(f"  qqp precision / recall          {qr.precision:6.1%} / {qr.recall:.1%}  (target P >= 95% at R >= 40%)")
    print(f"  qqp best recall at P >= 95%     {best.recall:6.1%}  (verifier >= {thr:.3f}, picked on this part: "
          "optimistic)")

    rows = [json.loads(line) for line in ADV.open()]
    ea = embed_cached([r["a"] for r in rows], threads=args.threads)
    eb = embed_cached([r["b"] for r in rows], threads=args.threads)
    a_lex = np.stack([lex_vector(rules.signals(r["b"], r["a"])) for r in rows])
    a_ok = np.array([rules.check(r["b"], r["a"], cfg.verifier_veto).ok and not verbatim_differs(r["b"], r["a"])
                     for r in rows])
    a_eq = np.array([equivalent(r["b"], r["a"], rules.common_words) for r in rows]) & cfg.accept_equivalent
    a_t = np.array([cfg.verifier_threshold_for(detect(r["b"])) for r in rows], dtype=np.float32)
    if args.cross:
        a_t = np.where(CrossVerifier(args.cross).long_pairs_of([r["b"] for r in rows], [r["a"] for r in rows]),
                       np.maximum(a_t, cfg.cross_threshold_long), a_t).astype(np.float32)
    if args.no_rules:
        a_ok = np.array([not verbatim_differs(r["b"], r["a"]) for r in rows])
    if args.cross:
        a_sc = guarded(cross_scores([r["b"] for r in rows], [r["a"] for r in rows], Path(args.cross)),
                       lv.score_arrays(eb, ea, a_lex), cfg)
        if not args.no_rules:
            a_sc = np.where(refused([r["b"] for r in rows], [r["a"] for r in rows], cfg, Path(args.cross)), 0.0, a_sc)
    else:
        a_align = (np.concatenate([lv.align_rows(r["b"], [r["a"]]) for r in rows]) if lv.wants_align else None)
        a_sc = lv.score_arrays(eb, ea, a_lex, a_align)
    a_hit = ((ea * eb).sum(1) >= c) & a_ok & ((a_sc >= a_t) | a_eq)
    print("\nhand-written adversarial pairs (benchmarks/data/cache_adversarial.jsonl), shipped settings:")
    for k in sorted({r["kind"] for r in rows}):
        km = np.array([r["kind"] == k for r in rows])
        print(f"  {k:>10} {km.sum():3d} pairs: served {a_hit[km].sum()}")

    demo(args.cross, lv, rules, cfg)
    if args.cross:
        cv = CrossVerifier(args.cross)
        print("\ncross-encoder latency (one batched run, 1 intra-op thread, 300 runs, this machine):")
        for n in (1, 3):
            p50, p99 = cross_latency_ms(cv, n)
            print(f"  {n} candidate pair(s): p50 {p50:.2f} ms, p99 {p99:.2f} ms")
        return
    print("\nverifier latency (median of 300, this machine, 1 intra-op thread; with alignment features the encoder "
          "run over the prompt and the candidates is included):")
    for n in (1, 5):
        l_us, r_us = latency_us(lv, rules.check, n)
        print(f"  {n} candidate(s): learned (lexical features + ONNX) {l_us:.0f} us; rules {r_us:.0f} us")


if __name__ == "__main__":
    main()
