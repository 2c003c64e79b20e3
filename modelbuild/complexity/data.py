"""The mmlu-dev rows and their deterministic splits (by a hash of the text, independent of file order)."""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "mmlu-dev.jsonl.gz"
HELDOUT_PERCENT = 25  # measurement only: never used for fitting or tuning


@dataclass(frozen=True)
class Dataset:
    texts: list[str]
    category: np.ndarray  # str [N]
    subject: np.ndarray  # str [N]
    small_ok: np.ndarray  # bool [N]
    large_ok: np.ndarray  # bool [N]

    def take(self, idx: np.ndarray) -> "Dataset":
        return Dataset(
            texts=[self.texts[i] for i in idx],
            category=self.category[idx],
            subject=self.subject[idx],
            small_ok=self.small_ok[idx],
            large_ok=self.large_ok[idx],
        )

    def __len__(self) -> int:
        return len(self.texts)


def _bucket(text: str, salt: str) -> int:
    """0..99, a stable function of the text (sha256), so duplicates always land in the same split."""
    h = hashlib.sha256((salt + text).encode("utf-8")).digest()
    return int.from_bytes(h[:8], "big") % 100


def load(path: Path = DEFAULT_DATA) -> Dataset:
    rows = [json.loads(line) for line in gzip.open(path, "rt", encoding="utf-8")]
    return Dataset(
        texts=[r["text"] for r in rows],
        category=np.array([r["category"] for r in rows]),
        subject=np.array([r["subject"] for r in rows]),
        small_ok=np.array([bool(r["small_model_correct"]) for r in rows]),
        large_ok=np.array([bool(r["large_model_correct"]) for r in rows]),
    )


def heldout_mask(texts: list[str]) -> np.ndarray:
    """True for the 25% held out for measurement (benchmarks only); the rest is the training part.

    Model selection and the knob->threshold table use cross-validation inside the training part.
    """
    return np.array([_bucket(t, "complexity-heldout") < HELDOUT_PERCENT for t in texts])


def outcomes(small_ok: np.ndarray, large_ok: np.ndarray) -> np.ndarray:
    """Joint outcome index per row: 0 both right, 1 only small right, 2 only large right, 3 both wrong."""
    return (~small_ok).astype(np.int64) * 2 + (~large_ok).astype(np.int64)


OUTCOME_NAMES: tuple[str, ...] = ("both_ok", "small_only_ok", "large_only_ok", "both_wrong")
# Accuracy gained by sending a request of each outcome to the large model instead of the small one.
OUTCOME_GAIN = np.array([0.0, -1.0, 1.0, 0.0])
