"""PERSON candidates of the shared data sets with their span features, for `train_person.py` (build time only).

For every text: the int8 encoder's token states, the language signal, and the detector with every name counting
(`person_requires_context: false`, language not applied) give the PERSON spans the head proposes (after the
span checks of spans.py); each span gets `span_features` and whether today's policy (person.py) keeps it given
the text's language. Gold: a span of pii-dev is positive when it overlaps a gold PERSON span; every span of a
benign chat prompt, Quora question or STS sentence is negative. Cached under build/ (every text's token states
in float16 and its language, ~21,000 files), so a change of the features re-reads the cache instead of
re-running the encoder.

Rows come from ../shared/data (read here; no sentence of it is written anywhere but the build/ cache).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from semrouter.signals.pii import PIIConfig, PIIDetector
from semrouter.signals.pii.encode import TokenEmbedder
from semrouter.signals.pii.names import NameGazetteer
from semrouter.signals.pii.person import person_counts, trusted_language
from semrouter.signals.pii.person_model import TextStates, span_features

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"

# Chat origins whose texts earlier sessions read while writing the cue rules (dev), and those never read.
CHAT_DEV = ("arena-hard/v2.0", "gpteacher/roleplay", "nl2bash/nl", "tldr/prompt")
CHAT_HELD_OUT = ("arena-hard/v0.1", "gpteacher/codegen", "gpteacher/toolformer")
DATAGEN_ORIGIN = "datagen/train"


@dataclass
class Row:
    """One text: where it comes from, its group of near-duplicates, gold PERSON spans, and what was found."""

    text: str
    origin: str
    group: str
    kind: str  # "pii" (pii-dev), "chat" (benign prompts), "clean" (pii-clean-dev), "eval" (XSTest / Quora / STS)
    gold: list[tuple[int, int]] = field(default_factory=list)  # gold PERSON spans (pii-dev)
    in_record: bool = False  # the text has other gold personal data (pii-dev)
    trusted: bool = True  # the head's language
    other_flag: bool = False  # an entity other than PERSON survives today's policy
    # start, end, score, today's policy keeps it, extra (a candidates.py proposal: counts only by the span check)
    cands: list[tuple[int, int, float, bool, bool]] = field(default_factory=list)
    feats: np.ndarray | None = None  # [len(cands), dim]


_PUNCT = re.compile(r"[\W_]+", re.UNICODE)


def group_key(text: str) -> str:
    """The shared data's near-duplicate key: first 60 characters of the normalised text (SOURCES-v2.md)."""
    t = unicodedata.normalize("NFKC", text).lower()
    return " ".join(_PUNCT.sub(" ", t).split())[:60]


def template_key(text: str, entities: list[dict]) -> str:
    """pii-dev rows of one presidio template: the text with every gold span replaced by its type, then the key."""
    out, pos = [], 0
    for e in sorted(entities, key=lambda e: e["start"]):
        if e["start"] < pos:
            continue
        out += [text[pos : e["start"]], f" {e['type']} "]
        pos = e["end"]
    out.append(text[pos:])
    return group_key("".join(out))


def _jsonl(name: str) -> list[dict]:
    with gzip.open(DATA / name, "rt") as f:
        return [json.loads(line) for line in f]


def load_rows(datagen: int = 1500) -> list[Row]:
    """Every text used: pii-dev, pii-clean-dev, benign chat, XSTest safe prompts, Quora and STS English samples,
    and `datagen` generated requests of modelbuild/pii/datagen.py (seed 31) that name a person (positives only:
    always trained on, never validated or reported).

    Quora and STS each give two samples without a near-duplicate in common: `qqp/question`, `sts-en/eval` (the
    rows benchmarks/bench_pii.py reports, never trained on) and `qqp/train`, `sts-en/train` (negatives to learn
    from: 6,000 Quora questions, every STS English sentence after the first 200 rows).
    """
    rows: list[Row] = []
    for r in _jsonl("pii-dev.jsonl.gz"):
        gold = [(e["start"], e["end"]) for e in r["entities"] if e["type"] == "PERSON"]
        types = {e["type"] for e in r["entities"]}
        rec = bool(types & {"EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE", "IP_ADDRESS",
                            "STREET_ADDRESS", "DATE_OF_BIRTH"})
        rows.append(Row(r["text"], r["origin"], template_key(r["text"], r["entities"]), "pii", gold, rec))
    for r in _jsonl("pii-clean-dev.jsonl.gz"):
        rows.append(Row(r["text"], r["origin"], group_key(r["text"]), "clean"))
    for r in _jsonl("jailbreak-dev.jsonl.gz"):
        if r["label"] == "benign":
            rows.append(Row(r["text"], r["origin"], group_key(r["text"]), "chat"))
        elif r["label"] == "benign_lookalike" and r["origin"].startswith("xstest/"):
            rows.append(Row(r["text"], r["origin"], group_key(r["text"]), "eval"))
    if datagen:  # the PERSON head's own training sentences (datagen.py TRAIN templates): private people in requests
        from modelbuild.pii.datagen import make_examples

        for ex in make_examples(datagen, seed=31):
            gold = [(a, b) for a, b, t in ex.spans if t == "PERSON"]
            if gold:
                rows.append(Row(ex.text, DATAGEN_ORIGIN, group_key(ex.text), "pii", gold,
                                any(t != "PERSON" for _, _, t in ex.spans)))
    qqp = _jsonl("qqp-dev.jsonl.gz")
    rows += [Row(r["a"], "qqp/question", group_key(r["a"]), "eval") for r in qqp[::40][:1000]]
    sts = [r for r in _jsonl("paraphrase-dev.jsonl.gz") if r.get("kind") == "sts" and r.get("lang") == "en"]
    rows += [Row(r["a"], "sts-en/eval", group_key(r["a"]), "eval") for r in sts[:200]]
    seen = {r.group for r in rows if r.kind == "eval"}
    for origin, texts in (("qqp/train", [r["a"] for r in qqp[5::10]] + [r["b"] for r in qqp[5::10]][:2000]),
                          ("sts-en/train", [t for r in sts[200:] for t in (r["a"], r["b"])])):
        for t in dict.fromkeys(texts):  # no near-duplicate of an evaluation row
            if group_key(t) not in seen:
                seen.add(group_key(t))
                rows.append(Row(t, origin, group_key(t), "chat"))
    return rows


def extract(rows: list[Row], models: Path, cache: Path, floor: float | None = None, capitalised: bool = True,
            version: int = 2) -> None:
    """Fill each row's candidates, flags and features of feature `version` (token states cached under `cache`).

    `floor` (None: none): also the extra candidates of signals/pii/candidates.py (PERSON probability >= floor,
    and capitalised runs when `capitalised`), in a language the head is trusted on."""
    from semrouter.signals.pii.candidates import person_candidates
    from semrouter.signals.language import LanguageConfig, LanguageDetector

    cache.mkdir(parents=True, exist_ok=True)
    anyp = PIIDetector.load(models, PIIConfig(person_requires_context=False, head_languages=("en",)))
    names = NameGazetteer.load(models)
    langs = PIIConfig().head_languages
    embedder: TokenEmbedder | None = None
    language = LanguageDetector(LanguageConfig())
    for row in rows:
        f = cache / (hashlib.sha256(row.text.encode()).hexdigest()[:32] + ".npz")
        if f.is_file():
            z = np.load(f, allow_pickle=False)
            emb, offs, lang = z["emb"].astype(np.float32), [tuple(map(int, o)) for o in z["offsets"]], str(z["lang"])
        else:
            if embedder is None:
                embedder = TokenEmbedder.load(models, int8=True, threads=1)
            emb, offs = embedder.embed(row.text)
            lang = language.detect(row.text)
            np.savez(f, emb=emb.astype(np.float16), offsets=np.array(offs, dtype=np.int64).reshape(-1, 2),
                     lang=np.array(lang))
        found = anyp.detect(row.text, emb, offs, None)
        kept = person_counts(row.text, found, lang or None, True, langs, names)
        row.trusted = trusted_language(lang or None, langs)
        row.other_flag = any(e.type != "PERSON" for e in kept)
        kept_spans = {(e.start, e.end) for e in kept if e.type == "PERSON"}
        persons = [e for e in found if e.type == "PERSON"]
        extras = []
        probs = anyp.head.probs(emb) if len(offs) and anyp.head is not None else None
        if floor is not None and row.trusted and probs is not None and anyp.head is not None:
            extras = person_candidates(row.text, probs, offs, anyp.head.labels, floor, found, capitalised)
        row.cands = [(e.start, e.end, e.score, (e.start, e.end) in kept_spans, False) for e in persons]
        row.cands += [(e.start, e.end, e.score, False, True) for e in extras]
        if persons or extras:
            ts = TextStates.of(row.text, emb, offs, len(persons), any(e.type != "PERSON" for e in found), probs,
                               anyp.head.labels if anyp.head is not None else ())
            row.feats = np.stack([span_features(ts, e.start, e.end, e.score, names, x, version)
                                  for e, x in [(e, False) for e in persons] + [(e, True) for e in extras]])


def summary(rows: list[Row]) -> str:
    """Texts and candidates per origin (a line each)."""
    c: Counter[str] = Counter()
    n: Counter[str] = Counter()
    for r in rows:
        c[r.origin] += 1
        n[r.origin] += len(r.cands)
    return "\n".join(f"{o}: {c[o]} texts, {n[o]} PERSON candidates" for o in sorted(c))
