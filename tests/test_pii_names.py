"""The name gazetteer (signals/pii/names.py) and the `person_full_names` policy it backs.

Sentences and names written here (no data set); the committed gazetteer is checked against the script that
builds it (modelbuild/pii/gazetteer.py) when the `names` package is installed (the build extra).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from semrouter.signals.pii import PIIConfig
from semrouter.signals.pii.names import NAMES_FILE, NameGazetteer
from semrouter.signals.pii.person import person_counts
from semrouter.signals.types import PIIEntity

ARTIFACTS = Path(__file__).resolve().parents[1] / "modelbuild" / "artifacts"


@pytest.fixture(scope="module")
def gazetteer() -> NameGazetteer:
    return NameGazetteer.load(ARTIFACTS)


@pytest.mark.parametrize("value", [
    "Dana Whitfield", "Dana J. Whitfield", "Dana Whitfield's", "Dana Whitfield-Moreno", "Brenda Kowalski",
])
def test_first_name_and_surname_are_a_full_name(gazetteer: NameGazetteer, value: str) -> None:
    assert gazetteer.full_name(value)


@pytest.mark.parametrize("value", [
    "Dana",                  # one name: needs a cue word
    "Whitfield",
    "Will Power",            # census names that are common words are not on the lists
    "Grant Park",
    "May Day",
    "Frodo Baggins",         # not census names
    "Dana whitfield",        # in a text that uses capitals, a surname is capitalised
    "Whitfield Dana",
])
def test_other_spans_are_not(gazetteer: NameGazetteer, value: str) -> None:
    assert not gazetteer.full_name(value)


def test_lower_case_text_may_hold_lower_case_names(gazetteer: NameGazetteer) -> None:
    assert gazetteer.full_name("dana whitfield", cased=False)


def _person(text: str, value: str) -> PIIEntity:
    i = text.index(value)
    return PIIEntity("PERSON", i, i + len(value), value, 0.9)


def test_policy_counts_a_full_name_only_in_a_trusted_language(gazetteer: NameGazetteer) -> None:
    text = "Did Dana Whitfield ever answer about the venue?"
    found = [_person(text, "Dana Whitfield")]
    assert person_counts(text, found, "en", True, ("en",), gazetteer) == found
    assert person_counts(text, found, "en", True, ("en",), None) == []  # the policy before the gazetteer
    assert person_counts(text, found, "de", True, ("en",), gazetteer) == []


def test_policy_still_drops_a_lone_first_name(gazetteer: NameGazetteer) -> None:
    text = "Did Dana ever answer about the venue?"
    assert person_counts(text, [_person(text, "Dana")], "en", True, ("en",), gazetteer) == []


def test_config_key_defaults_on() -> None:
    assert PIIConfig().person_full_names is True


def test_committed_gazetteer_is_what_the_script_builds() -> None:
    pytest.importorskip("names")
    from modelbuild.pii.gazetteer import build

    committed = json.loads((ARTIFACTS / NAMES_FILE).read_text())
    assert committed == json.loads(json.dumps(build(20000)))
    assert (ARTIFACTS / NAMES_FILE).stat().st_size < 5_000_000
