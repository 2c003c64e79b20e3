"""Build-time caches are replaced atomically: parallel writers of one cache file never leave a torn or stray file."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from modelbuild.npz_store import save_npz_atomic


def test_parallel_writers_leave_one_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "cache" / "store.npz"

    def write(i: int) -> None:
        save_npz_atomic(target, keys=np.array([f"k{i}"] * 2000), vecs=np.full((2000, 64), i, np.float32))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, range(32)))
    with np.load(target) as z:
        i = int(z["vecs"][0, 0])
        assert (z["vecs"] == i).all() and set(z["keys"].tolist()) == {f"k{i}"}
    assert [p.name for p in target.parent.iterdir()] == ["store.npz"]


def test_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "store.npz"
    save_npz_atomic(target, a=np.arange(3))

    class Unsaveable:
        def __array__(self, *args: object, **kwargs: object) -> np.ndarray:
            raise RuntimeError("cannot convert")

    try:
        save_npz_atomic(target, a=Unsaveable())  # type: ignore[arg-type]
    except RuntimeError:
        pass
    with np.load(target) as z:
        assert z["a"].tolist() == [0, 1, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["store.npz"]
