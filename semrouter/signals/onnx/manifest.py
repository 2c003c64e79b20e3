"""`models/manifest.json`: what a model directory must contain. The runtime refuses any mismatch.

Written by `modelbuild/build_all.py`. Checked here before any session is created: every listed
file must exist with the recorded sha256, the embedding dimension must be the expected one and
each head's labels must match its `<head>.labels.json`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
ENCODER_FILES = {"fp32": "encoder.onnx", "int8": "encoder.int8.onnx"}
TOKENIZER_FILE = "tokenizer.json"


class ModelDirError(RuntimeError):
    """The model directory is missing, incomplete or does not match its manifest."""


def sha256_file(path: Path) -> str:
    """Hex sha256 of the file's bytes (read in blocks). Raises OSError when it cannot be read."""
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


@dataclass(frozen=True, slots=True)
class Manifest:
    """The verified contents of a model directory."""

    model_dir: Path
    embedding_dim: int
    files: dict[str, str]  # name -> sha256
    heads: dict[str, list[str]]  # head name (file stem) -> labels
    raw: dict[str, Any]

    def has(self, name: str) -> bool:
        return name in self.files

    def path(self, name: str) -> Path:
        return self.model_dir / name


def load_manifest(model_dir: str | Path, *, verify_hashes: bool = True) -> Manifest:
    """Read and check `model_dir/manifest.json`; raise ModelDirError with a fix hint on any mismatch."""
    model_dir = Path(model_dir)
    hint = "rebuild it with `make models` (python -m modelbuild.build_all --out models)"
    mpath = model_dir / MANIFEST
    if not mpath.is_file():
        raise ModelDirError(f"{mpath} not found; {hint}")
    try:
        raw = json.loads(mpath.read_text())
        files = {str(k): str(v) for k, v in raw["files"].items()}
        dim = int(raw["embedding_dim"])
        heads = {str(k): [str(x) for x in v] for k, v in raw.get("heads", {}).items()}
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ModelDirError(f"{mpath} is not a valid manifest ({e}); {hint}") from e
    if dim != 384:
        raise ModelDirError(f"{mpath}: embedding_dim {dim} but the runtime expects 384; {hint}")
    for required in (TOKENIZER_FILE, *ENCODER_FILES.values()):
        if required not in files:
            raise ModelDirError(f"{mpath} does not list {required}; {hint}")
    for name, digest in files.items():
        p = model_dir / name
        if not p.is_file():
            raise ModelDirError(f"{p} is listed in the manifest but missing; {hint}")
        if verify_hashes and sha256_file(p) != digest:
            raise ModelDirError(f"{p} does not match the sha256 in {mpath} (modified or partial copy); {hint}")
    for head, labels in heads.items():
        lpath = model_dir / f"{head}.labels.json"
        if lpath.is_file():
            try:
                on_disk = json.loads(lpath.read_text())
            except ValueError as e:
                raise ModelDirError(f"{lpath} is not valid JSON ({e}); {hint}") from e
            on_disk = on_disk.get("labels", []) if isinstance(on_disk, dict) else on_disk
            if [str(x) for x in on_disk] != labels:
                raise ModelDirError(f"{lpath} labels differ from {mpath}; {hint}")
    return Manifest(model_dir=model_dir, embedding_dim=dim, files=files, heads=heads, raw=raw)
