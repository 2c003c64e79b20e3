"""The generated benign persona requests stored on the jailbreak memory's "none" side (modelbuild/safety_persona.py)."""

from __future__ import annotations

import json
import re
from argparse import Namespace

from modelbuild.heads import ROOT
from modelbuild.safety_memory import DIM, persona_views
from modelbuild.safety_persona import _STAY, persona_prompts


def _sentences(text: str) -> set[str]:
    return {s.strip().lower() for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()}


def test_persona_prompts_are_seeded_distinct_and_each_tells_the_model_to_keep_its_role() -> None:
    rows = persona_prompts(300)
    assert rows == persona_prompts(300) and len(set(rows)) == 300
    assert persona_prompts(300, seed=1) != rows
    clauses = [c.rstrip(".").lower() for c in _STAY]
    assert all(any(c.split(",")[0] in r.lower() for c in clauses) for r in rows), "a row without its clause"


def test_the_measured_persona_set_shares_no_sentence_with_the_generated_rows() -> None:
    """benchmarks/data/persona_prompts.jsonl measures the change; it must not be what the memory stores."""
    measured = [json.loads(x)["text"] for x in (ROOT / "benchmarks" / "data" / "persona_prompts.jsonl")
                .read_text().splitlines() if x.strip()]
    assert len(measured) >= 60
    generated = set().union(*(_sentences(t) for t in persona_prompts()))
    stay = {c.lower() for c in _STAY}  # the clauses themselves are the phrase both sets must share
    shared = {s for t in measured for s in _sentences(t)} & generated - stay
    assert not shared, shared


def test_no_persona_rows_means_no_extra_views() -> None:
    out = persona_views(Namespace(persona=0, models=ROOT / "models"))
    assert out.shape == (0, DIM)
