"""The category head's exemplar memory: 2-bit codes, the numpy vote and the ONNX graph agree."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from modelbuild.category_memory import EPS, MemoryVote, edit_rows, memory_graph


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def memory() -> tuple[MemoryVote, np.ndarray]:
    rng = np.random.default_rng(3)
    centres = _unit(rng.normal(size=(5, 32)))
    labels = np.repeat(np.arange(5), 40)
    rows = _unit(centres[labels] + 0.3 * rng.normal(size=(200, 32)))
    return MemoryVote.build(rows, labels, 5, k=7, tau=0.05), centres


def test_codes_round_trip_within_half_a_step(memory: tuple[MemoryVote, np.ndarray]) -> None:
    mem, _ = memory
    assert mem.codes.dtype == np.uint8 and mem.codes.shape == (200, 8)  # 4 codes a byte
    m = mem.matrix()
    assert m.shape == (200, 32)
    levels = np.round((m - mem.lo) / mem.step)
    assert set(np.unique(levels)) <= {0.0, 1.0, 2.0, 3.0}


def test_vote_finds_the_cluster(memory: tuple[MemoryVote, np.ndarray]) -> None:
    mem, centres = memory
    p = mem.probs(centres)
    assert p.shape == (5, 5)
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-6)
    assert list(p.argmax(1)) == [0, 1, 2, 3, 4]
    lt = mem.log_term(centres)
    assert lt.max() <= np.log(1.0 - EPS + EPS / 5) + 1e-6 and lt.min() >= np.log(EPS / 5) - 1e-6


def test_exclude_hides_rows(memory: tuple[MemoryVote, np.ndarray]) -> None:
    mem, centres = memory
    exclude = np.zeros((5, 200), bool)
    exclude[0, mem.labels == 0] = True  # the first query may not see its own cluster
    assert mem.probs(centres, exclude).argmax(1)[0] != 0


def test_onnx_graph_matches_numpy(memory: tuple[MemoryVote, np.ndarray]) -> None:
    mem, centres = memory
    nodes, inits = memory_graph(mem)
    g = helper.make_graph(
        nodes, "mem", [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["b", 32])],
        [helper.make_tensor_value_info("mem_logp", TensorProto.FLOAT, ["b", 5])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(m)
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(4)
    q = _unit(np.concatenate([centres, rng.normal(size=(11, 32))]))
    # one query per run, as the router at concurrency 1 (the graph quantises a batch as one tensor)
    got = np.concatenate([sess.run(["mem_logp"], {"embedding": q[i : i + 1]})[0] for i in range(len(q))])
    np.testing.assert_allclose(got, mem.log_term(q), atol=1e-5)


def test_editing_drops_a_row_labelled_unlike_its_neighbours(memory: tuple[MemoryVote, np.ndarray]) -> None:
    mem, centres = memory
    rows = mem.matrix()
    labels = mem.labels.copy()
    labels[0] = 4  # one row of cluster 0 carries the label of cluster 4
    groups = np.arange(len(rows))
    keep = edit_rows(rows, labels, groups, k=7, tau=0.05)
    assert not keep[0] and keep[1:].mean() > 0.8  # (the fixture's clusters overlap a little)
    edited = MemoryVote.build(rows[keep], labels[keep], 5, k=7, tau=0.05)
    near_copy = _unit(rows[:1] + 1e-3)  # a query nearly identical to the mislabelled row
    assert edited.probs(near_copy).argmax(1)[0] == 0
