"""Configuration of the semantic cache."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class CacheConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
