"""Choose the cross-encoder's thresholds on the validation part of the mix and write them into cross.json.

Same decision as the cache (judge.py) with the config's cosine pre-filter (similarity_threshold 0.55), the
default vetoes (verifier_veto, verbatim) and answer-neutral rewordings served without the score:

* `cross_threshold_other_languages` (the cache2 rule): the lowest t where every non-English language's false
  hits on STS "different" validation pairs stay <= 5% and the pooled rate <= 2%;
* `cross_threshold` (cache13's rule, with the router's substitution refusal, scores.refused): the t (on GRID) serving
  the most equivalent English STS pairs of the validation origin (stsb/dev: every English row outside the mix's
  train and test parts, the mix's val rows included; 111 equivalent, 335 different) with every near-miss kind of
  >= 10 pairs (not qqp, not STS) <= 4% false hits on the mix's val part and on chatval (mix.chat_validation_pairs),
  and no more of the pool's English STS "different" pairs served than at 0.70 (the training-time choice); ties go
  to the higher t. The older rule (train.py's: the mean hit rate over every validation "same" group, each
  "different" group of >= 30 pairs except qqp's <= 4%, no substitution refusal) is printed beside it.

Reads the exported model (`make models` first), so the thresholds fit the shipped file; the test part is
never read here. Then `make models` again copies the thresholds into the model's sidecar.

    .venv/bin/python -m modelbuild.cache_verifier.cross.choose [--write]
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from modelbuild.cache_verifier.cross.export import SIDECAR
from modelbuild.cache_verifier.cross.scores import MODEL, cross_scores, refused
from modelbuild.cache_verifier.mix import PARAPHRASE, MixPair, chat_validation_pairs, load_mix
from modelbuild.cache_verifier.train import MAX_VAL_FALSE_HITS, MIN_GROUP, Mixed, kind_groups, report
from semrouter.cache.config import CacheConfig

GRID = tuple(round(x, 3) for x in (*np.arange(0.30, 0.95, 0.02), *np.arange(0.95, 0.999, 0.005)))


LEGACY_T = 0.70  # the training-time choice (xenc): the pool's STS "different" false hits may not rise above it
MAX_NEAR_MISS = 0.04


def sts_en_pool(seed: int = 0) -> list[MixPair]:
    """Every English STS row of the validation origin (stsb/dev) outside the mix's other parts, middle scores
    (2.5 < s < 4) dropped as in mix.py: part "stspool", y = score >= 4."""
    import gzip

    held = {(p.a, p.b) for p in load_mix(seed) if p.part != "val"}
    with gzip.open(PARAPHRASE, "rt", encoding="utf-8") as f:
        return [MixPair(r["a"], r["b"], r["score"] >= 4.0, "sts_en", "stspool") for r in map(json.loads, f)
                if r["kind"] == "sts" and r["origin"] == "stsb/dev" and r["lang"] == "en"
                and not 2.5 < r["score"] < 4.0 and (r["a"], r["b"]) not in held]


def _router_view(pairs: list[MixPair], threads: int) -> tuple[Mixed, np.ndarray]:
    """Features and the router's cross-encoder score (0 where it refuses a one-run substitution) of `pairs`."""
    cfg = CacheConfig()
    mix = Mixed(pairs, threads)
    score = cross_scores([p.b for p in pairs], [p.a for p in pairs])
    score = np.where(refused([p.b for p in pairs], [p.a for p in pairs], cfg, MODEL), 0.0, score)
    return mix, score


def english_threshold(val: list[MixPair], threads: int) -> float:
    """cache13's rule for `cross_threshold` (module docstring); prints each candidate's numbers."""
    c = CacheConfig().similarity_threshold
    parts = {"val": [p for p in val if not p.kind.startswith("sts_")], "chatval": chat_validation_pairs(),
             "stspool": sts_en_pool()}
    views = {name: _router_view(ps, threads) for name, ps in parts.items()}

    def served(name: str, t: float) -> np.ndarray:
        mix, score = views[name]
        return (mix.cos >= c) & mix.veto_ok & ((score >= t) | mix.equiv)

    def worst(name: str, t: float) -> float:
        mix, _ = views[name]
        s = served(name, t)
        rates = [s[(mix.kind == k) & ~mix.y].mean() for k in sorted(set(mix.kind.tolist()))
                 if k != "qqp" and ((mix.kind == k) & ~mix.y).sum() >= 10]
        return max(rates)

    y = views["stspool"][0].y
    cap = served("stspool", LEGACY_T)[~y].sum()
    best = (LEGACY_T, -1)
    for t in sorted(GRID, reverse=True):  # ties go to the higher t
        pool = served("stspool", t)
        ok = worst("val", t) <= MAX_NEAR_MISS and worst("chatval", t) <= MAX_NEAR_MISS and pool[~y].sum() <= cap
        if ok and 0.4 <= t <= 0.9:
            print(f"  t {t}: STS-en pool same {pool[y].sum()}/{y.sum()}, different {pool[~y].sum()}/{(~y).sum()}, "
                  f"worst near-miss val {worst('val', t):.1%} chatval {worst('chatval', t):.1%}")
        if ok and pool[y].sum() > best[1]:
            best = (t, int(pool[y].sum()))
    return best[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--write", action="store_true", help="write the choice into cross.json")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    val = [p for p in load_mix() if p.part == "val"]
    mix = Mixed(val, args.threads)
    score = cross_scores([p.b for p in val], [p.a for p in val], progress=True)
    c = CacheConfig().similarity_threshold
    base = (mix.cos >= c) & mix.veto_ok
    kind = mix.kind.astype(str)
    other = np.char.startswith(kind, "sts_") & (kind != "sts_en")
    t_other = 1.0
    for t in GRID:
        served = base & ((score >= t) | mix.equiv)
        diff = other & ~mix.y
        per = [served[diff & (kind == k)].mean() for k in sorted(set(kind[other]))]
        if max(per) <= 0.05 and served[diff].mean() <= 0.02:
            t_other = t
            break
    groups = {g: m & ~other for g, m in kind_groups(mix.kind, mix.y).items() if (m & ~other).sum() >= 10}
    diff = [m for g, m in groups.items() if g.endswith(":diff") and not g.startswith("qqp") and m.sum() >= MIN_GROUP]
    same = [m for g, m in groups.items() if g.endswith(":same")]
    best = (1.0, -1.0)
    for t in GRID:
        served = base & ((score >= t) | mix.equiv)
        if max(served[m].mean() for m in diff) > MAX_VAL_FALSE_HITS:
            continue
        obj = float(np.mean([served[m].mean() for m in same]))
        if obj > best[1]:
            best = (t, obj)
    print(f"older rule (mean 'same' hit rate, no substitution refusal): {best[0]} ({best[1]:.1%})")
    t_en = english_threshold(val, args.threads)
    print(f"chosen on validation: cross_threshold {t_en}, cross_threshold_other_languages {t_other}")
    served = base & ((score >= np.where(other, t_other, t_en)) | mix.equiv)
    report("validation (chosen on)", served, mix.y, mix.kind, mix.cos)
    if args.write:
        meta = json.loads(SIDECAR.read_text())
        meta["chosen_on_validation"] = {"similarity_threshold": c, "cross_threshold": t_en,
                                        "cross_threshold_other_languages": t_other,
                                        "max_false_hits_per_kind": MAX_VAL_FALSE_HITS}
        meta["cross_threshold_rule"] = ("choose.py english_threshold (cache13): the most equivalent English stsb/dev "
                                        "pairs served, every val / chatval near-miss kind <= 4%, English STS "
                                        "'different' pairs served no more than at 0.70")
        SIDECAR.write_text(json.dumps(meta, indent=2) + "\n")
        print(f"wrote {SIDECAR}")


if __name__ == "__main__":
    main()
