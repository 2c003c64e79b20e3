"""One-term swaps inside long prompts under `verifier: cross`, by pair length: false hits, and what fixes cost.

The cross-encoder was trained on pairs of at most 96 tokens and scores pairs up to `max_len_served` (256); its
score of a one-term swap rises with the shared context around it (benchmarks/RESULTS.md, `review11` item 6). Pairs
made here from prompts of ../shared/data (40-250 MiniLM tokens, `--tokens 8,48` for short ones; never copied into
the repo), one rewrite each:

* near-misses (different answer): `entity` (a capitalised word inside a sentence -> a capitalised word of another
  prompt), `word` (a lower-case content word of 5+ letters -> one of another prompt), `term` (a technical term ->
  its sibling, _TERMS, where the prompt has one), `number` (a number changed);
  `sibling` (a lower-case sibling or converse of _SIBLINGS: top / bottom, host / guest);
* paraphrases (same answer): `typo`, `polite` and `synonym` (modelbuild/cache_verifier/chatpairs.py's rewrites),
  `synonym2` (a near-synonym of _SYNONYMS2: rapidly / quickly).

The swap sits at a random word of the prompt. Verdict as the router's (judge.py): MiniLM cosine >= 0.55, verbatim,
case and the `verifier_veto` families, then the cross-encoder >= cross_threshold (0.54; cross_threshold_long, 0.70,
over 96 tokens) or the rewording rule (equivalent.py), for

* `full`: the whole pair (today; over max_len_served tokens it scores 0, refused);
* `window N`: the cross-encoder scores only the differing window (cross_verify.differing_window, N words of
  shared context each side) when the pair is longer than `--from-tokens` (96: the training length);
* `specific`: today plus the `specific` veto for pairs longer than that;
* `long 2 (shipped)` (cache.cross_long_substitution_words = 2): pairs longer than that whose prompts differ in one
  run of at most 2 words each, not an answer-neutral swap, score 0 (cross_verify.substituted);
* `all N, ...` (cache.cross_short_substitution_words = N as well): the same at every length; `no synonyms`: always
  refused; `w C x S`: not refused when no run names something (capitalised mid-sentence, mixed case), the MiniLM
  cosine of the two runs alone is >= C (cross_substitution_synonym_cosine) and the cross-encoder scores the two
  runs alone >= S (cross_substitution_synonym_score), as semantic.py decides it; `w C p P x S` (`--near`): and
  the near-synonym model's probability (semrouter/cache/near_synonym.py) >= P
  (cross_substitution_synonym_probability).

Parts: `val` = half of the mmlu-dev prompts (choices made here), `within` = the other half (within source), `test`
= mmlupro-dev and the arena-hard prompts of jailbreak-dev (held out by source). Scores cached under build/xenc/.

    .venv/bin/python benchmarks/bench_cache_long_swaps.py --part val|within|test [--per-source 200] [--tokens 8,48]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import random
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from modelbuild.cache_verifier import chatpairs, features  # noqa: E402
from modelbuild.cache_verifier.cross.scores import cross_scores  # noqa: E402
from modelbuild.cache_verifier.embed import embed_cached  # noqa: E402
from semrouter.cache import near_synonym  # noqa: E402
from semrouter.cache.casing import case_differs  # noqa: E402
from semrouter.cache.config import CacheConfig  # noqa: E402
from semrouter.cache.cross_verify import differing_window, substituted  # noqa: E402
from semrouter.cache.verify import vocabulary_words  # noqa: E402
from semrouter.cache.equivalent import equivalent  # noqa: E402
from semrouter.cache.verbatim import verbatim_differs  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
CROSS = ROOT / "models" / "cache_verifier_cross.onnx"
_TERMS = [("PostgreSQL", "MySQL"), ("Python", "JavaScript"), ("Linux", "Windows"), ("GET", "POST"),
          ("TCP", "UDP"), ("React", "Vue"), ("JSON", "XML"), ("AWS", "Azure"), ("Docker", "Kubernetes"),
          ("Java", "Kotlin"), ("iOS", "Android"), ("SQL", "NoSQL"), ("Excel", "Sheets"), ("C++", "Rust"),
          ("plaintiff", "defendant"), ("buyer", "seller"), ("landlord", "tenant"), ("employer", "employee"),
          ("acid", "base"), ("oxidation", "reduction"), ("mitosis", "meiosis"), ("voltage", "current")]
_TERM_MAP = {a: b for a, b in _TERMS} | {b: a for a, b in _TERMS}
# lower-case siblings / converses (`sibling`, near-misses) and near-synonyms (`synonym2`, paraphrases) written for the
# tenth session (`cache12`) to measure the near-synonym model; neither shares a pair with the model's fitting lists
# (modelbuild/cache_verifier/near_synonym.py), _TERMS or chatpairs._SYN
_SIBLINGS = """top bottom|prefix suffix|numerator denominator|horizontally vertically|host guest|predecessor successor|
ancestor descendant|superclass subclass|supplier customer|nurse surgeon|mother father|son daughter|men women|
day night|sunrise sunset|weekday weekend|protons neutrons|electrons neutrons|arteries capillaries|bacteria fungi|
mammals reptiles|birds fish|cells tissues|genes chromosomes|atoms molecules|resistance voltage|heat temperature|
volume density|pressure density|monopoly oligopoly|deficit surplus|tariffs quotas|interest principal|
appellant respondent|prosecutor defendant|contract tort|federal state|senate congress|president governor|
encoder decoder|compiler interpreter|keys values|width length|upward downward|inward outward|northern southern|
eastern western|variance deviation|median mode|tangent cosine|diagonal vertical|consumers producers|
exporters importers|renters owners|students teachers|teachers parents|plants animals|vertebrates invertebrates"""
_SYNONYMS2 = """rapidly quickly|commonly frequently|correct accurate|obtain acquire|begin initiate|
finish complete|assist aid|employ hire|method technique|approach strategy|principal chief|essential vital|
crucial critical|illustrate show|depict portray|explain clarify|evaluate assess|estimate approximate|
approximately roughly|several multiple|numerous many|typical common|occur happen|results outcomes|effects impacts|
risk hazard|goal aim|employees workers|staff personnel|customers clients|sellers vendors|teenagers adolescents|
idea notion|rule principle|passage excerpt|author writer|discuss examine|determine identify|main key|
usual normal|quick rapid|buy get|choose pick|demonstrate show|shows indicates|suggests indicates|
increase rise|decline drop"""


def _word_map(text: str) -> dict[str, str]:
    pairs = [p.split() for p in text.replace("\n", "").split("|")]
    return {a: b for a, b in pairs} | {b: a for a, b in pairs}


_SIB_MAP, _SYN2_MAP = _word_map(_SIBLINGS), _word_map(_SYNONYMS2)


def _swap_listed(t: str, rng: random.Random, table: dict[str, str]) -> str:
    """`t` with one word of `table` (whole word, lower-case or capitalised) replaced by its partner; "" if none."""
    spots = [m for m in re.finditer(r"[A-Za-z]+", t) if m.group().lower() in table]
    if not spots:
        return ""
    m = rng.choice(spots)
    rep = table[m.group().lower()]
    rep = rep.capitalize() if m.group()[0].isupper() else rep
    return t[:m.start()] + rep + t[m.end():]
_STOP = frozenset("""which would their there these those about after before other could should where while
being under between through during without within against because""".split())
BUCKETS = ((0, 48), (48, 96), (96, 160), (160, 256), (256, 10_000))


@dataclass(frozen=True, slots=True)
class Pair:
    a: str  # cached
    b: str  # new
    same: bool
    kind: str
    source: str


def _h(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def load_prompts(part: str, tokens: Callable[[list[str]], list[int]], per_source: int,
                 span: tuple[int, int] = (40, 250)) -> dict[str, list[str]]:
    """Source -> prompts of `span` (40-250) tokens of `part` (sorted by hash, at most per_source)."""
    src: dict[str, list[str]] = {"mmlu": [], "mmlupro": [], "arena-hard": []}
    with gzip.open(DATA / "mmlu-dev.jsonl.gz", "rt", encoding="utf-8") as f:
        src["mmlu"] = [json.loads(x)["text"] for x in f]
    with gzip.open(DATA / "mmlupro-dev.jsonl.gz", "rt", encoding="utf-8") as f:
        src["mmlupro"] = [r["text"] for r in map(json.loads, f) if not r.get("in_old_mmlu_dev")]
    with gzip.open(DATA / "jailbreak-dev.jsonl.gz", "rt", encoding="utf-8") as f:
        src["arena-hard"] = [r["text"] for r in map(json.loads, f)
                             if r["label"] == "benign" and r["origin"].startswith("arena-hard")]
    if part in ("val", "within"):
        src = {"mmlu": [t for t in src["mmlu"] if (_h(t) % 2 == 0) == (part == "val")]}
    else:
        src.pop("mmlu")
    out = {}
    for s, texts in src.items():
        texts = sorted(set(t.strip() for t in texts), key=_h)[:per_source * 12]
        n = tokens(texts)
        out[s] = [t for t, k in zip(texts, n, strict=True) if span[0] <= k <= span[1]][:per_source]
    return out


def _swap_word(t: str, rng: random.Random, pool: list[str], pattern: str) -> str:
    spots = [m for m in re.finditer(pattern, t) if m.group().lower() not in _STOP]
    if not spots or not pool:
        return t
    m = rng.choice(spots)
    rep = rng.choice(pool)
    return t if rep == m.group() else t[:m.start()] + rep + t[m.end():]


def build(prompts: dict[str, list[str]]) -> list[Pair]:
    cap = r"(?<=[a-z,] )[A-Z][a-z]{3,}\b"
    low = r"(?<= )[a-z]{5,}\b"
    out: list[Pair] = []
    for s, texts in prompts.items():
        caps = sorted({m.group() for t in texts for m in re.finditer(cap, t)})
        lows = sorted({m.group() for t in texts for m in re.finditer(low, t)} - _STOP)
        for t in texts:
            rng = random.Random(_h(t))
            terms = [m for m in re.finditer(r"[A-Za-z+]+", t) if m.group() in _TERM_MAP]
            term = ""
            if terms:
                m = rng.choice(terms)
                term = t[:m.start()] + _TERM_MAP[m.group()] + t[m.end():]
            rewrites = {"entity": _swap_word(t, rng, caps, cap), "word": _swap_word(t, rng, lows, low),
                        "term": term, "number": chatpairs.number(t, rng),
                        "typo": chatpairs.typo(t, rng), "polite": chatpairs.polite(t, rng),
                        "synonym": chatpairs.synonym(t, rng), "sibling": _swap_listed(t, rng, _SIB_MAP),
                        "synonym2": _swap_listed(t, rng, _SYN2_MAP)}
            for k, b in rewrites.items():
                if b and b != t:
                    out.append(Pair(t, b, k in ("typo", "polite", "synonym", "synonym2"), k, s))
    return out


def near_probabilities(runs: list[tuple[str, str]]) -> np.ndarray:
    """near_synonym.probability of each (new run, cached run): float32 [N] (embeddings cached as embed_cached's)."""
    if not runs:
        return np.zeros(0, np.float32)
    flat = [t for a, b in runs for t in near_synonym.texts(a, b)]
    vecs = embed_cached(flat, threads=2).reshape(len(runs), 8, -1)
    return np.array([near_synonym.probability(v) for v in vecs], dtype=np.float32)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", default="val", choices=("val", "within", "test"))
    ap.add_argument("--per-source", type=int, default=200)
    ap.add_argument("--from-tokens", type=int, default=96, help="pairs longer than this get the fix")
    ap.add_argument("--windows", default="", help="context words of window variants to score (e.g. 8,16,32)")
    ap.add_argument("--both", default="0.6,0.7,0.8", help="cross-encoder thresholds on the two runs alone, "
                    "required as well as each --word-cos threshold (cross_substitution_synonym_score)")
    ap.add_argument("--tokens", default="40,250", help="MIN,MAX prompt tokens (e.g. 8,48 for short prompts)")
    ap.add_argument("--synonym", default="",
                    help="thresholds of a near-synonym exception by the cross-encoder on the two runs alone "
                    "(no cosine)")
    ap.add_argument("--near", default="", help="thresholds of near_synonym.probability (the near-synonym model "
                    "on the two runs; cross_substitution_synonym_probability), each with every --word-cos and --both "
                    "threshold (all three must pass, as in the router)")
    ap.add_argument("--word-cos", default="0.4,0.5,0.6",
                    help="thresholds of the MiniLM-cosine near-synonym exception (cross_substitution_synonym_cosine)")
    ap.add_argument("--threshold", type=float, default=None,
                    help="cross_threshold (the pair's score) instead of the config's")
    ap.add_argument("--threshold-long", type=float, default=None,
                    help="cross_threshold_long (pairs over 96 tokens) instead of the config's")
    args = ap.parse_args()
    cfg = CacheConfig()
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(ROOT / "models" / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()

    def tokens(texts: list[str]) -> list[int]:
        return [len(e.ids) for e in tok.encode_batch(texts)]

    span = tuple(int(x) for x in args.tokens.split(","))
    pairs = build(load_prompts(args.part, tokens, args.per_source, (span[0], span[1])))
    a, b = [p.a for p in pairs], [p.b for p in pairs]
    pair_len = np.array([len(e.ids) for e in tok.encode_batch(list(zip(b, a, strict=True)))])
    ea, eb = embed_cached(a, threads=2), embed_cached(b, threads=2)
    cos = (ea * eb).sum(1)
    rules = features.rules_verifier()
    passed = np.array([not (verbatim_differs(y, x) or case_differs(y, x)) and rules.check(y, x, cfg.verifier_veto).ok
                       for x, y in zip(a, b, strict=True)]) & (cos >= cfg.similarity_threshold)
    spec_ok = np.array([rules.check(y, x, ("specific",)).ok for x, y in zip(a, b, strict=True)])
    eq = np.array([equivalent(y, x, rules.common_words) for x, y in zip(a, b, strict=True)])
    long = pair_len > args.from_tokens
    need = np.flatnonzero(passed & ~eq)
    t0 = cfg.cross_threshold if args.threshold is None else args.threshold
    long_t = max(t0, cfg.cross_threshold_long if args.threshold_long is None else args.threshold_long)
    t = np.where(pair_len > 96, long_t, t0)  # cross_threshold_long over the training length (96 tokens)
    print(f"cross_threshold {t0}, over 96 tokens {long_t}")

    def verdict(score_ok: np.ndarray) -> np.ndarray:
        return passed & (eq | score_ok)

    full = np.zeros(len(pairs), np.float32)
    full[need] = cross_scores([b[i] for i in need], [a[i] for i in need], CROSS, progress=True)
    variants: dict[str, np.ndarray] = {"full (today)": verdict(full >= t),
                                       "specific when long": verdict(full >= t) & (spec_ok | ~long)}
    common = vocabulary_words(ROOT / "models" / "tokenizer.json")
    variants["long 2 (shipped)"] = verdict((full >= t) & ~(np.array(
        [substituted(y, x, 2, common) is not None for x, y in zip(a, b, strict=True)]) & long))
    for n in (1, 2):  # substitution refused at every length (cache.cross_short_substitution_words = n)
        runs = [substituted(y, x, n, common) for x, y in zip(a, b, strict=True)]
        sub = np.array([r is not None for r in runs])
        free = np.array([r is not None and not r.refused for r in runs])  # no run names something
        variants[f"all {n}, no synonyms"] = verdict((full >= t) & ~sub)
        ri = np.flatnonzero(free)
        rs, wc = np.zeros(len(pairs), np.float32), np.zeros(len(pairs), np.float32)
        if len(ri):  # the near-synonym signals: the cross-encoder and MiniLM cosine of the two runs alone
            rs[ri] = cross_scores([runs[i].new for i in ri], [runs[i].cached for i in ri], CROSS)  # type: ignore
            wa = embed_cached([runs[i].new for i in ri], threads=2)  # type: ignore[union-attr]
            wb = embed_cached([runs[i].cached for i in ri], threads=2)  # type: ignore[union-attr]
            wc[ri] = (wa * wb).sum(1)
        ns = np.zeros(len(pairs), np.float32)  # near_synonym.probability of the two runs
        if len(ri) and args.near:
            ns[ri] = near_probabilities([(runs[i].new, runs[i].cached) for i in ri])  # type: ignore[union-attr]
        for pt in (float(x) for x in args.near.split(",") if x):
            for wt in (float(x) for x in args.word_cos.split(",") if x):
                for st in (float(x) for x in args.both.split(",") if x):
                    variants[f"all {n}, w {wt} p {pt} x {st}"] = verdict((full >= t) & ~(sub & ~(
                        free & (wc >= wt) & (ns >= pt) & (rs >= st))))
        for st in (float(x) for x in args.synonym.split(",") if x):
            variants[f"all {n}, x {st}"] = verdict((full >= t) & ~(sub & ~(free & (rs >= st))))
        for wt in (float(x) for x in args.word_cos.split(",") if x):
            for st in (0.0, *(float(x) for x in args.both.split(",") if x)):
                variants[f"all {n}, w {wt} x {st}"] = verdict((full >= t) & ~(sub & ~(free & (wc >= wt) & (rs >= st))))
    for w in (int(x) for x in args.windows.split(",") if x):
        wins = [differing_window(b[i], a[i], w) for i in need]
        sc = full.copy()
        sc[need] = cross_scores([x for x, _ in wins], [y for _, y in wins], CROSS, progress=True)
        sc = np.where(long, sc, full)
        variants[f"window {w}"] = verdict(sc >= t)
    kinds = ("entity", "word", "term", "sibling", "number", "typo", "polite", "synonym", "synonym2")
    kind = np.array([p.kind for p in pairs])
    source = np.array([p.source for p in pairs])
    print(f"{len(pairs)} pairs ({args.part}: {', '.join(sorted(set(source.tolist())))}); fix for pairs > "
          f"{args.from_tokens} tokens; near-miss kinds: false-hit rate, typo / polite: hit rate")
    for s in (*sorted(set(source.tolist())), "all"):
        sm = np.ones(len(pairs), bool) if s == "all" else source == s
        print(f"\nsource {s}")
        print(f"{'variant':>20} {'pair tokens':>12} " + " ".join(f"{k:>13}" for k in kinds))
        for name, v in variants.items():
            for lo, hi in BUCKETS:
                lm = sm & (pair_len > lo) & (pair_len <= hi)
                cells = [f"{v[lm & (kind == k)].mean():6.1%} ({(lm & (kind == k)).sum():4d})"
                         if (lm & (kind == k)).any() else f"{'-':>13}" for k in kinds]
                print(f"{name:>20} {f'{lo + 1}-{hi}':>12} " + " ".join(cells))


if __name__ == "__main__":
    main()
