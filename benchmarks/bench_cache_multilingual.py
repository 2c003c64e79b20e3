"""Non-English cache hits in the multilingual space (cache.multilingual), per language, against today's path.

A trial is a pair (cached prompt `a`, new prompt `b`) of paraphrase-dev's STS rows in the 10 languages other than
English: "same" when scored >= 4 (hit rate, want high), "different" when <= 2.5 (false-hit rate, want low). The
language signal (default settings) detects both prompts, as the router does:

* **multilingual** (cache.multilingual on): a prompt detected as a language in `cache.multilingual.languages` is
  stored and looked up in that language's own space (multilingual-e5-small, models/e5); a hit needs both prompts
  detected as the same language, e5 cosine >= the threshold, and no veto (verbatim, case, and the families of
  `cache.multilingual.veto`). Other prompts use the English path below.
* **today** (`verifier: cross`): MiniLM cosine >= similarity_threshold, the `verifier_veto` families, and the
  cross-encoder >= cross_threshold_other_languages (or the rewording rule).

Parts (paraphrase-dev origins, whole origins): `val` = stsb/dev (thresholds chosen here), `test` = stsb/test (held
out by source), `within` = 300 rows per language of stsb/train (within source: never used for a choice). Beside
STS, generated near-misses of the same part's sentences (`number`: a number in the sentence changed; `negation`: a
per-language copula or verb negated, see _NEGATE) and benchmarks/data/cache_multilingual.jsonl (hand-written,
per language: paraphrases, negations, numbers, other entities). Embeddings are cached under build/ (never in the
repo).

    .venv/bin/python benchmarks/bench_cache_multilingual.py [--part val|test|within] [--sweep] [--no-cross]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from modelbuild.cache_verifier import features  # noqa: E402
from modelbuild.cache_verifier.embed import embed_cached  # noqa: E402
from modelbuild.e5_embed import embed_e5  # noqa: E402
from semrouter.cache.casing import case_differs  # noqa: E402
from semrouter.cache.config import CacheConfig  # noqa: E402
from semrouter.cache.equivalent import equivalent  # noqa: E402
from semrouter.cache.verbatim import verbatim_differs  # noqa: E402
from semrouter.cache.verify import Verifier  # noqa: E402
from semrouter.signals.language import LanguageConfig, LanguageDetector  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "paraphrase-dev.jsonl.gz"
OWN = ROOT / "benchmarks" / "data" / "cache_multilingual.jsonl"
LANGS = ("de", "es", "fr", "it", "ja", "nl", "pl", "pt", "ru", "zh")
ORIGIN = {"val": "stsb/dev", "test": "stsb/test", "within": "stsb/train"}
WITHIN_PER_LANG = 300

# one negation per language, applied at the first match (a copula or a common verb form); a sentence without a
# match yields no pair. Approximate grammar is enough: the pair must not be served either way.
_NEGATE: dict[str, list[tuple[str, str]]] = {
    "de": [(r"(?<![\w'’-])(ist|sind|war|waren|hat|haben|spielt|spielen|sitzt|steht)\b", r"\1 nicht")],
    "es": [(r"(?<![\w'’-])(es|está|están|son|era|fue|tiene|hay)\b", r"no \1")],
    "fr": [(r"(?<![\w'’-])(est|sont|était|a|ont)\b", r"n'\1 pas")],
    "it": [(r"(?<![\w'’-])(è|sono|era|ha|hanno|sta|stanno)\b", r"non \1")],
    "pt": [(r"(?<![\w'’-])(é|está|estão|são|era|tem|há)\b", r"não \1")],
    "nl": [(r"(?<![\w'’-])(is|zijn|was|waren|heeft|hebben|speelt|zit|staat)\b", r"\1 niet")],
    "pl": [(r"(?<![\w'’-])(jest|są|był|była|ma|mają|gra|siedzi|stoi)\b", r"nie \1")],
    "ru": [(r"(?<![\w-])(является|был|была|было|были|играет|сидит|стоит|едет|держит|режет|ест)(?![\w-])", r"не \1")],
    "ja": [(r"しています", "していません"), (r"います", "いません"), (r"ている", "ていない"), (r"です", "ではありません")],
    "zh": [(r"正在", "没有在"), (r"是", "不是"), (r"在", "不在")],
}
_NUM = re.compile(r"\d+")


@dataclass(frozen=True, slots=True)
class Pair:
    a: str  # cached
    b: str  # new
    same: bool
    lang: str
    kind: str  # sts | number | negation | own_<kind>


def _bucket(text: str) -> int:
    return int(hashlib.sha1(text.encode()).hexdigest()[:8], 16) % 1000


def load_pairs(part: str) -> list[Pair]:
    """STS pairs of `part` (same: score >= 4, different: <= 2.5) and generated near-misses of their sentences."""
    sts: list[Pair] = []
    with gzip.open(DATA, "rt", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if r["kind"] != "sts" or r["lang"] not in LANGS or r["origin"] != ORIGIN[part]:
                continue
            if 2.5 < r["score"] < 4.0:
                continue
            sts.append(Pair(r["a"], r["b"], r["score"] >= 4.0, r["lang"], "sts"))
    if part == "within":
        by: dict[str, list[Pair]] = {}
        for p in sorted(sts, key=lambda p: _bucket(p.a + p.b)):
            by.setdefault(p.lang, []).append(p)
        sts = [p for lang in LANGS for p in by.get(lang, [])[:WITHIN_PER_LANG]]
    out = list(sts)
    seen: set[str] = set()
    for p in sts:
        s = p.a
        if s in seen:
            continue
        seen.add(s)
        m = _NUM.search(s)
        if m:
            n = int(m.group())
            out.append(Pair(s, s[:m.start()] + str(n + 1 + n % 3) + s[m.end():], False, p.lang, "number"))
        for pat, rep in _NEGATE[p.lang]:
            neg, k = re.subn(pat, rep, s, count=1)
            if k:
                out.append(Pair(s, neg, False, p.lang, "negation"))
                break
    return out


def load_own() -> list[Pair]:
    rows = [json.loads(line) for line in OWN.open(encoding="utf-8")] if OWN.is_file() else []
    return [Pair(r["a"], r["b"], r["same"], r["lang"], f"own_{r['kind']}") for r in rows]


def veto_fn(families: tuple[str, ...], rules: Verifier) -> Callable[[str, str], bool]:
    """(new, cached) -> refused by verbatim, case or a rule family (the router's judge order)."""
    def refused(b: str, a: str) -> bool:
        return verbatim_differs(b, a) or case_differs(b, a) or (bool(families) and not rules.check(b, a, families).ok)
    return refused


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", default="val", choices=("val", "test", "within"))
    ap.add_argument("--threshold", type=float, default=None, help="e5 cosine threshold (default: the config's)")
    ap.add_argument("--veto", default=None, help="comma-separated families for the multilingual space")
    ap.add_argument("--sweep", action="store_true", help="print hit / false-hit rates over e5 thresholds")
    ap.add_argument("--no-cross", action="store_true", help="skip today's path (the cross-encoder scores)")
    args = ap.parse_args()
    cfg = CacheConfig()
    ml = cfg.multilingual
    t_e5 = args.threshold if args.threshold is not None else ml.threshold
    fams = tuple(x for x in args.veto.split(",") if x) if args.veto is not None else ml.veto
    pairs = load_pairs(args.part) + (load_own() if args.part == "test" else [])
    a, b = [p.a for p in pairs], [p.b for p in pairs]
    detect = LanguageDetector(LanguageConfig()).detect
    la, lb = np.array([detect(x) for x in a]), np.array([detect(x) for x in b])
    ea, eb = embed_e5(a), embed_e5(b)
    cos5 = (ea * eb).sum(1)
    rules = features.rules_verifier()
    refused_ml = np.array([veto_fn(fams, rules)(y, x) for x, y in zip(a, b, strict=True)])
    other = lambda v: (v != "en") & (v != "und")  # noqa: E731
    in_space = other(lb) & np.isin(lb, ml.languages or LANGS)
    same_space = in_space & (la == lb)
    english_path = ~in_space & ~(other(la) & np.isin(la, ml.languages or LANGS))
    lang = np.array([p.lang for p in pairs])
    kind = np.array([p.kind for p in pairs])
    y = np.array([p.same for p in pairs])

    # today's path (MiniLM + cross-encoder) for the pairs that stay on it, and for the whole set as the baseline
    today = np.zeros(len(pairs), bool)
    if not args.no_cross:
        from modelbuild.cache_verifier.cross.scores import cross_scores

        cx = cfg.model_copy(update={"verifier": "cross"})
        ma, mb = embed_cached(a, threads=2), embed_cached(b, threads=2)
        cos_m = (ma * mb).sum(1)
        sc = cross_scores(b, a, ROOT / "models" / "cache_verifier_cross.onnx", progress=True)
        refused_en = np.array([veto_fn(cx.verifier_veto, rules)(y_, x_) for x_, y_ in zip(a, b, strict=True)])
        eq = np.array([equivalent(y_, x_, rules.common_words) for x_, y_ in zip(a, b, strict=True)])
        t_x = np.array([cx.verifier_threshold_for(v) for v in lb], dtype=np.float32)
        today = (cos_m >= cx.similarity_threshold) & ~refused_en & ((sc >= t_x) | eq)
    new = np.where(english_path, today, same_space & (cos5 >= t_e5) & ~refused_ml)

    print(f"{len(pairs)} pairs ({args.part}); e5 threshold {t_e5}, multilingual veto {'+'.join(fams) or '-'}; new "
          f"prompt detected in its own language {np.mean(lb == lang):.1%}, pairs in one multilingual space "
          f"{same_space.mean():.1%}")
    kinds = sorted(set(kind.tolist()))
    head = f"{'lang':>5} " + " ".join(f"{k + (':same' if k in ('sts',) else ''):>18}" for k in kinds)
    for label, verdict in (("today (cross)", today), ("multilingual", new)):
        if label.startswith("today") and args.no_cross:
            continue
        print(f"\n{label}: hit rate on same / false-hit rate on different, per language")
        print(head + f" {'sts:diff':>12}")
        for lg in (*LANGS, "all"):
            lm = np.ones(len(pairs), bool) if lg == "all" else lang == lg
            cells = []
            for k in kinds:
                for want in ((True,) if k == "sts" else (False, True)):
                    m = lm & (kind == k) & (y == want)
                    if k != "sts" and not m.any():
                        continue
                    cells.append(f"{verdict[m].mean():6.1%} ({m.sum():4d})" if m.any() else f"{'-':>13}")
            m = lm & (kind == "sts") & ~y
            print(f"{lg:>5} " + " ".join(f"{c:>18}" for c in cells) + f" {verdict[m].mean():6.1%} ({m.sum():4d})")
    if args.sweep:
        print("\nsweep (multilingual space; vetoes as above): threshold, STS same hit, STS diff false hit (pooled, "
              "worst language), number / negation false hits")
        for t in np.arange(0.80, 0.97, 0.01):
            v = np.where(english_path, today, same_space & (cos5 >= t) & ~refused_ml)
            s, d = (kind == "sts") & y, (kind == "sts") & ~y
            worst = max((v[d & (lang == lg)].mean(), lg) for lg in LANGS)
            num, neg = kind == "number", kind == "negation"
            print(f"  {t:.2f}: same {v[s].mean():6.1%}  diff {v[d].mean():5.1%} (worst {worst[0]:5.1%} {worst[1]})  "
                  f"number {v[num].mean():5.1%}  negation {v[neg].mean():5.1%}")


if __name__ == "__main__":
    main()
