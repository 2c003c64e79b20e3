"""Helpers for tests that need the built model directory (`make models`)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"


def ensure_models() -> Path:
    """Build `models/` when it is missing or stale (fast no-op when up to date)."""
    from modelbuild.build_all import build

    build(MODELS)
    return MODELS
