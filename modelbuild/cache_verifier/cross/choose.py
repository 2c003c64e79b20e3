"""Choose the cross-encoder's thresholds on the validation part of the mix and write them into cross.json.

Same decision as the cache (judge.py) with the config's cosine pre-filter (similarity_threshold 0.55), the
default vetoes (verifier_veto, verbatim) and answer-neutral rewordings served without the score:

* `cross_threshold_other_languages` (the cache2 rule): the lowest t where every non-English language's false
  hits on STS "different" validation pairs stay <= 5% and the pooled rate <= 2%;
* `cross_threshold`: the t maximising the mean hit rate over the validation "same" groups (English ones and the
  chat / qqp / antonym kinds) with every "different" group of >= 30 pairs except qqp's <= 4% false hits
  (train.py's rule).

Reads the exported model (`make models` first), so the thresholds fit the shipped (int8) file; the test part is
never read here. Then `make models` again copies the thresholds into the model's sidecar.

    .venv/bin/python -m modelbuild.cache_verifier.cross.choose [--write]
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from modelbuild.cache_verifier.cross.export import SIDECAR
from modelbuild.cache_verifier.cross.scores import cross_scores
from modelbuild.cache_verifier.mix import load_mix
from modelbuild.cache_verifier.train import MAX_VAL_FALSE_HITS, MIN_GROUP, Mixed, kind_groups, report
from semrouter.cache.config import CacheConfig

GRID = tuple(round(x, 3) for x in (*np.arange(0.30, 0.95, 0.02), *np.arange(0.95, 0.999, 0.005)))


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
    t_en = best[0]
    print(f"chosen on validation: cross_threshold {t_en} (mean 'same' hit rate {best[1]:.1%}), "
          f"cross_threshold_other_languages {t_other}")
    served = base & ((score >= np.where(other, t_other, t_en)) | mix.equiv)
    report("validation (chosen on)", served, mix.y, mix.kind, mix.cos)
    if args.write:
        meta = json.loads(SIDECAR.read_text())
        meta["chosen_on_validation"] = {"similarity_threshold": c, "cross_threshold": t_en,
                                        "cross_threshold_other_languages": t_other,
                                        "max_false_hits_per_kind": MAX_VAL_FALSE_HITS}
        SIDECAR.write_text(json.dumps(meta, indent=2) + "\n")
        print(f"wrote {SIDECAR}")


if __name__ == "__main__":
    main()
