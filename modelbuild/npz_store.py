"""Atomic writes of the build-time `.npz` caches (embeddings, pair features, scores) under /tmp or build/.

Several builds may share one cache file (parallel worktrees, a benchmark beside a training run). Each write goes to
a uniquely named file in the same directory and is renamed over the target, so a reader always sees a whole file
(the last writer wins) and no run renames another's half-written file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np


def save_npz_atomic(path: Path, **arrays: np.ndarray) -> None:
    """Write `arrays` (name -> array, as `np.savez`) to `path`, replacing it atomically; creates the directory.

    Raises OSError when the directory cannot be written; the temporary file is removed then."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.stem + ".", suffix=".tmp.npz", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
