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

    @field_validator("types")
    @classmethod
    def _known_types(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(v) - set(ALL_TYPES))
        if unknown:
            raise ValueError(f"unknown PII types {unknown}; known: {list(ALL_TYPES)}")
        return tuple(dict.fromkeys(v))
