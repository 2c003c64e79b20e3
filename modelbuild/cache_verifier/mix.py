"""The verifier's training mix and its held-out parts, labelled "same answer?" (`y`) and tagged by kind.

    qqp        qqp-dev: train/val/test by sha256 of the pair (data.split_of); a sample of each
    sts_<lang> paraphrase-dev STS pairs, 11 languages: same when score >= 4, different when <= 2.5 (the
               middle is dropped); train = origin stsb/train, val = stsb/dev, test = stsb/test (whole origins;
               a fixed sample per language of each)
    negation   paraphrase-dev negations: train = cannot/wikifactcheck-english + cannot/antonym-substitution;
               test = the other origins (sentiment-labelled sentences, glue-diagnostic, nan-nli), never trained on
    antonym_paraphrase  same meaning said with an antonym (one origin): split by a hash of the pair
    chat kinds chatpairs.py: train sources vs test sources (whole sources held out); 10% of the train
               sources' prompts (by hash of the original prompt) are validation

Validation (threshold and epoch choice) never overlaps test; test numbers are read once, after the choice.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path

from modelbuild.cache_verifier import chatpairs
from modelbuild.cache_verifier.data import QQP, load_qqp, split_of

PARAPHRASE = Path(__file__).resolve().parents[3] / "shared" / "data" / "paraphrase-dev.jsonl.gz"
_NEG_TRAIN = ("cannot/wikifactcheck-english", "cannot/antonym-substitution")


@dataclass(frozen=True, slots=True)
class MixPair:
    a: str  # the cached prompt
    b: str  # the new prompt
    y: bool  # the cached answer fits the new prompt
    kind: str
    part: str  # train | val | test


def _bucket(*texts: str) -> int:
    return int.from_bytes(hashlib.sha256("\x00".join(texts).encode()).digest()[:8], "big") % 100


def _sample(rows: list[MixPair], n: int, seed: int) -> list[MixPair]:
    return rows if len(rows) <= n else random.Random(seed).sample(rows, n)


def qqp_pairs(n_train: int, n_val: int, n_test: int, seed: int = 0) -> list[MixPair]:
    by: dict[str, list[MixPair]] = {"train": [], "val": [], "test": []}
    for p in load_qqp(QQP):
        by[split_of(p)].append(MixPair(p.a, p.b, p.duplicate, "qqp", split_of(p)))
    return (_sample(by["train"], n_train, seed) + _sample(by["val"], n_val, seed)
            + _sample(by["test"], n_test, seed))


def paraphrase_pairs(sts_train_per_lang: int, sts_val_per_lang: int, neg_train: int, seed: int = 0) -> list[MixPair]:
    with gzip.open(PARAPHRASE, "rt", encoding="utf-8") as f:
        rows = [json.loads(x) for x in f]
    sts: dict[tuple[str, str], list[MixPair]] = {}
    neg_tr: list[MixPair] = []
    out: list[MixPair] = []
    for r in rows:
        if r["kind"] == "sts":
            if 2.5 < r["score"] < 4.0:
                continue
            part = {"stsb/train": "train", "stsb/dev": "val", "stsb/test": "test"}[r["origin"]]
            sts.setdefault((part, r["lang"]), []).append(
                MixPair(r["a"], r["b"], r["score"] >= 4.0, f"sts_{r['lang']}", part))
        elif r["kind"] == "negation":
            if r["origin"] in _NEG_TRAIN:
                b = _bucket(r["a"], r["b"])
                neg_tr.append(MixPair(r["a"], r["b"], False, "negation", "val" if b < 10 else "train"))
            else:
                out.append(MixPair(r["a"], r["b"], False, "negation", "test"))
        elif r["kind"] == "antonym_paraphrase":
            b = _bucket(r["a"], r["b"])
            part = "train" if b < 60 else "val" if b < 70 else "test"
            out.append(MixPair(r["a"], r["b"], True, "antonym_paraphrase", part))
    for (part, _lang), xs in sorted(sts.items()):
        n = {"train": sts_train_per_lang, "val": sts_val_per_lang, "test": 2 * sts_val_per_lang + 100}[part]
        out += _sample(xs, n, seed)
    out += _sample([p for p in neg_tr if p.part == "train"], neg_train, seed)
    out += _sample([p for p in neg_tr if p.part == "val"], max(neg_train // 8, 1), seed)
    return out


def chat_pairs(per_source: int, seed: int = 0) -> list[MixPair]:
    out = []
    for p in chatpairs.build(per_source, seed):
        part = p.part
        if part == "train" and _bucket(p.a) < 10:
            part = "val"
        out.append(MixPair(p.a, p.b, p.same_answer, f"chat_{p.kind}", part))
    return out


def within_source_pairs(seed: int = 0, per_lang: int = 100, n_neg: int = 500, n_qqp: int = 1000,
                        chat_prompts: int = 100) -> list[MixPair]:
    """Unseen rows of the *training* sources (part "within"): never trained or tuned on, but from the same
    sources as training (not grouped by near-duplicates, so a row may resemble a training row). STS rows of
    origin stsb/train outside the training sample; negation rows of the training origins outside theirs; qqp
    train-split pairs outside theirs; chat rewrites of the training sources' prompts after the first 300."""
    used = {(p.a, p.b) for p in load_mix(seed)}
    out: list[MixPair] = []
    with gzip.open(PARAPHRASE, "rt", encoding="utf-8") as f:
        rows = [json.loads(x) for x in f]
    sts: dict[str, list[MixPair]] = {}
    neg: list[MixPair] = []
    for r in rows:
        if (r["a"], r["b"]) in used:
            continue
        if r["kind"] == "sts" and r["origin"] == "stsb/train" and not 2.5 < r["score"] < 4.0:
            sts.setdefault(r["lang"], []).append(
                MixPair(r["a"], r["b"], r["score"] >= 4.0, f"sts_{r['lang']}", "within"))
        elif r["kind"] == "negation" and r["origin"] in _NEG_TRAIN and _bucket(r["a"], r["b"]) >= 10:
            neg.append(MixPair(r["a"], r["b"], False, "negation", "within"))
    for _lang, xs in sorted(sts.items()):
        out += _sample(xs, per_lang, seed + 1)
    out += _sample(neg, n_neg, seed + 1)
    qqp = [MixPair(p.a, p.b, p.duplicate, "qqp", "within") for p in load_qqp(QQP)
           if split_of(p) == "train" and (p.a, p.b) not in used]
    out += _sample(qqp, n_qqp, seed + 1)
    out += [MixPair(p.a, p.b, p.same_answer, f"chat_{p.kind}", "within")
            for p in chatpairs.build(300 + chat_prompts, seed) if p.part == "train" and (p.a, p.b) not in used]
    return out


def chat_validation_pairs(seed: int = 0, skip: int = 400, upto: int = 3000) -> list[MixPair]:
    """More validation for rule choices (part "chatval"): chat rewrites of the *training* sources' prompts that
    neither the mix nor the within part uses (prompts `skip`..`upto` in chatpairs' hash order; never trained on),
    for the kinds the mix's validation part has too few of (swap, unit) and their neighbours. Same sources as
    training, so it says how rules do on those rewrite rules, not on unseen sources."""
    seen = {p.a for p in chatpairs.build(skip, seed)}
    kinds = ("swap", "unit", "negation", "number", "scope", "entity", "synonym", "reorder", "typo")
    return [MixPair(p.a, p.b, p.same_answer, f"chat_{p.kind}", "chatval") for p in chatpairs.build(upto, seed)
            if p.part == "train" and p.a not in seen and p.kind in kinds]


def load_mix(seed: int = 0) -> list[MixPair]:
    """The whole mix (a few ten thousand pairs); sizes fixed here so a rerun is identical."""
    return (qqp_pairs(3000, 800, 3000, seed) + paraphrase_pairs(400, 100, 2500, seed)
            + chat_pairs(300, seed))


if __name__ == "__main__":
    from collections import Counter

    mix = load_mix()
    c = Counter((p.part, p.kind, p.y) for p in mix)
    for k in sorted(c):
        print(k, c[k])
    print(len(mix), "pairs,", len({p.a for p in mix} | {p.b for p in mix}), "unique texts")
