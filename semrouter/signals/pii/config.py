"""Configuration of PII detection."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

ALL_TYPES: tuple[str, ...] = (
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "US_SSN",
    "CREDIT_CARD",
    "IP_ADDRESS",
    "IBAN_CODE",
    "PERSON",
    "STREET_ADDRESS",
    "DATE_OF_BIRTH",
)
LEARNED_TYPES: frozenset[str] = frozenset({"PERSON", "STREET_ADDRESS"})


class PIIConfig(BaseModel):
    """Which PII types to look for and how sure the learned head must be."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=True, description="off: no PII detection runs")
    types: tuple[str, ...] = Field(
        default=ALL_TYPES, description="entity types to report; any of " + ", ".join(ALL_TYPES)
    )
    min_score: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="minimum mean token probability for PERSON / STREET_ADDRESS spans",
    )
    person_requires_context: bool = Field(
        default=True,
        description="policy: a PERSON counts only when the text ties the name to a person (other personal data in "
        "the text, a title, 'my name is', a relation such as 'my colleague', a salutation or signature, "
        "'was born', an age); false: every name the head finds counts, including invented characters in "
        "story requests and public figures in questions (signals/pii/person.py)",
    )
    person_full_names: bool = Field(
        default=True,
        description="with person_requires_context: a PERSON span holding a first name followed by a surname from "
        "the US Census 1990 name lists (models/pii_names.json, built by modelbuild/pii/gazetteer.py; names that are "
        "common English words such as Will, Grant, Rose left out) counts without a context word; only in "
        "head_languages. With person_model on, the learned span check reads these lists as a feature and this rule "
        "is not applied",
    )
    person_model: bool = Field(
        default=True,
        description="with person_requires_context: a PERSON without a context word still counts when the learned "
        "span check (models/pii_person.json, trained by modelbuild/pii/train_person.py on the encoder's token states "
        "of the name, its neighbours and the whole text) scores it at least person_model_threshold; it replaces the "
        "person_full_names rule; only in head_languages (false: the rules of person_full_names alone)",
    )
    person_model_threshold: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="probability a name needs from the learned span check to count; null: the threshold validated "
        "when the model was trained (stored in models/pii_person.json). Lower finds more names and flags more "
        "ordinary prompts (story characters, public figures)",
    )
    person_candidates: bool = Field(
        default=True,
        description="with person_model: the span check also judges spans the head's decoding left out: runs of words "
        "whose PERSON probability is at least person_candidate_floor, and runs of capitalised words (a lone "
        "sentence-opening word only at that probability); such a span counts only when the check scores it at "
        "least the extra-candidate threshold of models/pii_person.json, never by a context word alone "
        "(signals/pii/candidates.py); only in head_languages",
    )
    person_candidate_floor: float | None = Field(
        default=None,
        gt=0.0,
        le=1.0,
        description="with person_candidates: the PERSON probability (B + I, mean over a word's tokens) a word needs to "
        "be proposed although the head's argmax said otherwise; null: the floor the span check was trained with "
        "(models/pii_person.json)",
    )
    head_languages: tuple[str, ...] = Field(
        default=("en",),
        description="ISO 639-1 codes of the languages the PERSON / STREET_ADDRESS head was trained on; in any other "
        "language the language signal detects, a PERSON needs personal context even when person_requires_context "
        "is false, and a STREET_ADDRESS needs a street word (calle, rua, Hauptstraße)",
    )

    @field_validator("types")
    @classmethod
    def _known_types(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(v) - set(ALL_TYPES))
        if unknown:
            raise ValueError(f"unknown PII types {unknown}; known: {list(ALL_TYPES)}")
        return tuple(dict.fromkeys(v))

    @field_validator("head_languages")
    @classmethod
    def _lower_codes(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [c for c in v if not (len(c.strip()) == 2 and c.strip().isalpha())]
        if bad:
            raise ValueError(f"head_languages: {bad} are not two-letter ISO 639-1 codes such as 'en'")
        return tuple(dict.fromkeys(c.strip().lower() for c in v))
