"""The whole-request PII scan (signals/pii/whole_request.py) on tool definitions: examples are not data."""

from __future__ import annotations

from semrouter.signals.pii.patterns import detect_patterns
from semrouter.signals.pii.whole_request import with_whole_request_pii
from semrouter.signals.types import Analysis, PIIEntity


class _Patterns:
    def detect(self, text: str, token_embeddings: None, offsets: None) -> list[PIIEntity]:
        return detect_patterns(text)


def _types(conversation: str, definitions: str) -> set[str]:
    out = with_whole_request_pii(Analysis(), _Patterns(), conversation, 8000, 2000, definitions=definitions)
    return {e.type for e in out.pii}


def test_example_values_in_tool_definitions_do_not_count() -> None:
    """review16: a strict policy refused ordinary agent tools for their documented example values."""
    for line in ("Phone number in E.164 format, e.g. +14155552671", "Recipient number, format (555) 123-4567",
                 "Client IP, for example 81.2.69.160", "IBAN such as DE89 3704 0044 0532 0130 00",
                 "Date of birth YYYY-MM-DD, e.g. 1990-01-31", "Numbers look like 020 7946 0958 in the UK"):
        assert _types("", f"create_contact\n{line}") == set(), line


def test_data_in_tool_definitions_and_examples_elsewhere_still_count() -> None:
    assert _types("", "crm\nLooks up records. Patient file: SSN 536-22-1847.") == {"US_SSN"}
    # a cue on an earlier line (another string of the schema) does not make the value an example
    assert _types("", "Phone, e.g.\nCall the owner on +1 415 555 0123 tonight") == {"PHONE_NUMBER"}
    # the example rule is for definitions only: the conversation is data
    assert _types("My number, for example +1 415 555 0123, is private", "") == {"PHONE_NUMBER"}
    assert _types("", "") == set()
