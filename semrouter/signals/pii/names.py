"""Name gazetteer: is a PERSON span a first name followed by a surname (census name lists)?

The evidence the PERSON policy (person.py) takes instead of a context word: "Dana Whitfield" is a person's
name; "Grant Park", "Will Power" or "May Day" are not (census names that are also common English words are
left out of the lists at build time). Built by `modelbuild/pii/gazetteer.py` into `models/pii_names.json`.
"""

from __future__ import annotations

import json
from pathlib import Path

NAMES_FILE = "pii_names.json"

_EDGE = ",;:!?.\"'“”‘’«»()[]*_"


def _words(value: str) -> list[str]:
    """Words of a span without edge punctuation or a possessive ("Whitfield's" -> "Whitfield")."""
    out = []
    for raw in value.split():
        w = raw.strip(_EDGE)
        if w[-2:].lower() in ("'s", "’s"):
            w = w[:-2]
        if w:
            out.append(w)
    return out


class NameGazetteer:
    """First names and surnames, lower case. Immutable; lookups are O(words in the span)."""

    def __init__(self, first: frozenset[str], last: frozenset[str]) -> None:
        self.first = first
        self.last = last

    @classmethod
    def load(cls, model_dir: str | Path) -> NameGazetteer:
        """Read `model_dir/pii_names.json` ({"first": [...], "last": [...]}).

        Raises FileNotFoundError when the file is missing, ValueError when it lacks either list.
        """
        data = json.loads((Path(model_dir) / NAMES_FILE).read_text())
        if not isinstance(data.get("first"), list) or not isinstance(data.get("last"), list):
            raise ValueError(f"{NAMES_FILE}: expected lists 'first' and 'last'")
        return cls(frozenset(map(str.lower, data["first"])), frozenset(map(str.lower, data["last"])))

    def full_name(self, value: str, cased: bool = True) -> bool:
        """True when `value` holds a listed first name followed by a listed surname ("Dana Whitfield",
        "Dana J. Whitfield", "Dana Whitfield-Ross"). With `cased` (the text uses capitals) both words must be
        capitalised; in an all-lower-case text they need not be."""
        words = _words(value)
        for i, w in enumerate(words[:-1]):
            if w.lower() not in self.first or (cased and not w[0].isupper()):
                continue
            j = i + 1
            if len(words[j].rstrip(".")) == 1 and j + 1 < len(words):  # a middle initial
                j += 1
            nxt = words[j]
            if cased and not nxt[0].isupper():
                continue
            if any(part.lower() in self.last for part in nxt.split("-")):
                return True
        return False
