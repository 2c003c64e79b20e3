"""Configuration of the model-based signals (ONNX encoder, heads, PII)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class SignalsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = False  # off: only keyword rules decide (no ONNX session is loaded)
