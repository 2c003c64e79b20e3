"""Counterfactual clean twins of pasted-document injections: the same document with the attack removed.

A document that was pasted once with an injected instruction and once clean differs only by that instruction.
When the attacked copy is trained on and the clean copy is not (the split the independent checks use keeps
near-duplicate groups apart, and a clean document's attacked twins start with other text), a head that learned
"this document is an injection" refuses the clean copy: within-origin look-alike false positives were 16% in
the sixth session. Training every attacked document ALSO as its own clean twin (label benign) leaves the
instruction as the only difference the head can use.

Which sentences are the attack is read from the data, not written by hand: an injected instruction is reused
in documents of different kinds (the same sentence in an email, a table and a code answer) or in several
different documents of one kind, a document's own sentences are not. `attack_sentences` returns those
normalised sentences (never one seen in a clean row); `clean_twin` removes them from one text.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable

from semrouter.signals.onnx.segments import split_sentences

_NON_WORD = re.compile(r"[^a-z0-9]+")


def _norm(s: str) -> str:
    return _NON_WORD.sub(" ", s.lower()).strip()


def _kind(origin: str) -> str:
    """The document kind of a pasted-document origin ('bipia/email/text_attack' -> 'email'); '' for others."""
    parts = origin.split("/")
    return parts[1] if parts[0] == "bipia" and len(parts) > 2 else ""


def attack_sentences(rows: Iterable[dict], min_kinds: int = 2, min_docs: int = 3, min_chars: int = 12) -> frozenset[str]:
    """Normalised sentences of `injection` rows seen in >= `min_kinds` document kinds or >= `min_docs` different
    documents (a row's longest sentence names its document), and in no clean row (rows: {text, label, origin};
    only pasted-document origins count)."""
    kinds: dict[str, set[str]] = defaultdict(set)
    docs: dict[str, set[str]] = defaultdict(set)
    clean: set[str] = set()
    for r in rows:
        kind = _kind(r["origin"])
        if not kind:
            continue
        sents = {_norm(r["text"][a:b]) for a, b in split_sentences(r["text"])}
        if r["label"] == "injection":
            doc = max(sents, key=len, default="")  # the document's longest sentence stands for the document
            for s in sents:
                kinds[s].add(kind)
                docs[s].add(doc)
        else:
            clean |= sents
    return frozenset(s for s in kinds if (len(kinds[s]) >= min_kinds or len(docs[s]) >= min_docs)
                     and s not in clean and len(s) >= min_chars)


def clean_twin(text: str, attacks: frozenset[str]) -> str | None:
    """`text` without its sentences in `attacks` (and the white space they leave), or None if it has none."""
    cut = [(a, b) for a, b in split_sentences(text) if _norm(text[a:b]) in attacks]
    if not cut:
        return None
    out, at = [], 0
    for a, b in cut:
        out.append(text[at:a].rstrip(" \t"))
        at = b
    out.append(text[at:])
    twin = "".join(out)
    return re.sub(r"\n{3,}", "\n\n", twin).strip() or None


def twin_rows(rows: list[dict]) -> list[dict]:
    """For every pasted-document injection whose attack is a sentence (origins ending in `text_attack`; a code
    attack spans lines that recur in clean code too), its clean twin: {text, label: benign_lookalike, origin:
    'twin/<origin>', src: index of the attacked row in `rows`}. The attack sentences are read from `rows`."""
    attacks = attack_sentences(rows)
    out = []
    for i, r in enumerate(rows):
        if r["label"] == "injection" and _kind(r["origin"]) and r["origin"].endswith("text_attack"):
            twin = clean_twin(r["text"], attacks)
            if twin is not None:
                out.append({"text": twin, "label": "benign_lookalike", "origin": f"twin/{r['origin']}", "src": i})
    return out
