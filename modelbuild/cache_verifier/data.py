"""qqp-dev pairs and the deterministic train/validation/test split (by a hash of the pair)."""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

QQP = Path(__file__).resolve().parents[3] / "shared" / "data" / "qqp-dev.jsonl.gz"


@dataclass(frozen=True, slots=True)
class Pair:
    a: str
    b: str
    duplicate: bool


def load_qqp(path: Path = QQP) -> list[Pair]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    return [Pair(r["a"], r["b"], bool(r["duplicate"])) for r in rows]


def split_of(p: Pair) -> str:
    """'train' (50%), 'val' (10%) or 'test' (40%), from sha256 of the pair (order-independent)."""
    x, y = sorted((p.a, p.b))
    bucket = int.from_bytes(hashlib.sha256(f"{x}\x00{y}".encode()).digest()[:8], "big") % 100
    return "train" if bucket < 50 else "val" if bucket < 60 else "test"
