"""The safety memory's measurement pieces (modelbuild/safety_memory.py): which views are stored, how a prompt votes."""

from __future__ import annotations

import numpy as np

from modelbuild.safety_memory import CLASSES, memory_rows, neighbours, vote_from


def _bag(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.concatenate([rng.normal(size=(n, 384)), np.zeros((n, 4))], axis=1).astype(np.float32)


def test_attack_rows_are_stored_only_by_their_witness_views() -> None:
    rng = np.random.default_rng(0)
    bags = [_bag(rng, 4), _bag(rng, 3), _bag(rng, 2)]
    probs = [np.array([[0.1, 0.0, 0.0], [0.7, 0.0, 0.0], [0.2, 0.0, 0.0], [0.6, 0.0, 0.0]]),  # jailbreak: views 1, 3
             np.array([[0.0, 0.1, 0.0], [0.0, 0.3, 0.0], [0.0, 0.2, 0.0]]),  # injection: none >= 0.5, its top view
             np.zeros((2, 3))]  # benign: every view
    mem, cls = memory_rows(bags, ["jailbreak", "injection", "benign"], probs)
    assert cls.tolist() == [CLASSES.index("jailbreak")] * 2 + [CLASSES.index("injection")] + [0, 0]
    unit = bags[0][:, :384] / np.linalg.norm(bags[0][:, :384], axis=1, keepdims=True)
    np.testing.assert_allclose(mem[:2], unit[[1, 3]], atol=1e-6)
    np.testing.assert_allclose(mem[2], bags[1][1, :384] / np.linalg.norm(bags[1][1, :384]), atol=1e-6)


def test_a_prompt_votes_by_its_closest_view_and_ties_go_to_the_closer() -> None:
    rng = np.random.default_rng(1)
    attack = rng.normal(size=(1, 384)).astype(np.float32)
    attack /= np.linalg.norm(attack)
    benign = rng.normal(size=(50, 384)).astype(np.float32)
    benign /= np.linalg.norm(benign, axis=1, keepdims=True)
    mem = np.concatenate([np.repeat(attack, 5, axis=0), benign])
    cls = np.array([1] * 5 + [0] * 50)
    near = attack + 0.05 * rng.normal(size=(1, 384)).astype(np.float32)
    nearer = attack + 0.01 * rng.normal(size=(1, 384)).astype(np.float32)
    bags = [np.concatenate([benign[:2] + 0.01, near]), benign[3:5] + 0.01, np.concatenate([nearer, benign[:1]])]
    sims, cl = neighbours(mem, cls, bags, k=10)
    v = vote_from(sims, cl, np.array([len(b) for b in bags]), k=5)
    assert v[0, 0] > 0.9 and v[1, 0] < 0.1  # one attack view among benign ones is enough; benign views alone are not
    assert v[2, 0] > v[0, 0]  # both unanimous: the closer view ranks higher
    assert (v[:, 1] == 0).all()  # nothing stored as injection
