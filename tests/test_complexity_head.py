"""The committed complexity head (modelbuild/artifacts/complexity_head.onnx) and its routing curve maths.

The head is fed synthetic unit vectors plus embeddings of a few written prompts (only when the exported
encoder exists in models/); no training data is needed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from modelbuild.complexity import curves

ROOT = Path(__file__).resolve().parents[1]
HEAD = ROOT / "modelbuild/artifacts/complexity_head.onnx"
META = HEAD.with_suffix(".labels.json")
MODELS = ROOT / "models"


@pytest.fixture(scope="module")
def head() -> ort.InferenceSession:
    return ort.InferenceSession(str(HEAD), providers=["CPUExecutionProvider"])


def _unit(n: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, 384)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _layers(n: int, seed: int = 0) -> np.ndarray:
    """Stand-in per-layer means [n,7,384] (not unit length, like the encoder's)."""
    return (3.0 * np.random.default_rng(seed + 100).standard_normal((n, 7, 384))).astype(np.float32)


def _feeds(emb: np.ndarray, texts: list[str] | None = None, layers: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The head's inputs: the embedding plus the word pieces of `texts` (default: short varied prompts) and
    the encoder's per-layer means (default: random stand-ins)."""
    from semrouter.signals.onnx.tokenize import TextTokenizer

    tok = TextTokenizer(ROOT / "models" / "tokenizer.json", 256)
    words = ["calculate", "which", "not", "the", "court", "energy", "moral", "explain", "integral", "why"]
    texts = texts or [" ".join(words[(i + j) % len(words)] for j in range(i % 7 + 1)) for i in range(len(emb))]
    tb = tok.encode(texts)
    return {"embedding": emb, "layer_means": _layers(len(emb)) if layers is None else layers,
            "input_ids": tb.input_ids, "attention_mask": tb.attention_mask}


def test_artifact_small_and_declares_expected_io(head: ort.InferenceSession) -> None:
    assert HEAD.stat().st_size < 5_000_000
    assert [i.name for i in head.get_inputs()] == ["embedding", "layer_means", "input_ids", "attention_mask"]
    assert head.get_inputs()[0].shape[1] == 384
    assert head.get_inputs()[1].shape[2] == 384
    meta = json.loads(META.read_text())
    assert meta["outcome_layers"] and max(meta["outcome_layers"]) < 7 and meta["inputs"]["layer_means"][1:] == [7, 384]
    assert [o.name for o in head.get_outputs()][:1] == ["probs"]


def test_probs_in_unit_interval_and_sum_to_one(head: ort.InferenceSession) -> None:
    probs, outcomes = head.run(["probs", "outcomes"], _feeds(_unit(64)))
    assert probs.shape == (64, 2) and outcomes.shape == (64, 4)
    assert ((probs >= 0) & (probs <= 1)).all()
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    np.testing.assert_allclose(outcomes.sum(1), 1.0, atol=1e-5)
    # score = 0.5 + 0.5 * outcomes @ weights, with the weights the training script recorded; a gain-like score:
    # "only large ok" counts for the large model, "only small ok" against it
    w = np.array(json.loads(META.read_text())["score_weights"], dtype=np.float64)
    assert w[2] > 0 > w[1]
    np.testing.assert_allclose(probs[:, 1], 0.5 + 0.5 * (outcomes @ w), atol=1e-5)


def test_batch_rows_independent(head: ort.InferenceSession) -> None:
    x, lm = _unit(8, seed=1), _layers(8, seed=1)
    texts = ["why is the sky blue", "not the court", "calculate the integral of x", "ok", "which moral", "explain",
             "energy energy energy", "the the"]
    (batched,) = head.run(["probs"], _feeds(x, texts, lm))  # padded to the longest text
    single = np.concatenate(
        [head.run(["probs"], _feeds(x[i : i + 1], texts[i : i + 1], lm[i : i + 1]))[0] for i in range(8)]
    )
    np.testing.assert_allclose(batched, single, atol=1e-6)


def test_layer_means_move_the_score_and_only_their_direction_counts(head: ort.InferenceSession) -> None:
    """Same embedding and prompt, different lower-layer states: the outcome route reads them; each layer mean
    is L2-normalised inside the graph, so scaling them changes nothing."""
    x = np.repeat(_unit(1, seed=3), 2, axis=0)
    lm = _layers(2, seed=3)
    texts = ["which moral", "which moral"]
    (probs,) = head.run(["probs"], _feeds(x, texts, lm))
    assert abs(float(probs[0, 1] - probs[1, 1])) > 1e-3
    per_row = np.array([0.5, 4.0], dtype=np.float32)[:, None, None]
    scale = per_row * np.linspace(1, 2, 7, dtype=np.float32)[None, :, None]
    (scaled,) = head.run(["probs"], _feeds(x, texts, lm * scale))
    np.testing.assert_allclose(scaled, probs, atol=1e-6)


def test_word_pieces_move_the_score(head: ort.InferenceSession) -> None:
    """Same embedding, different prompts: the word-piece route alone changes the score."""
    x = np.repeat(_unit(1, seed=2), 2, axis=0)
    lm = np.repeat(_layers(1, seed=2), 2, axis=0)
    (probs,) = head.run(["probs"], _feeds(x, ["hi", "Calculate the net present value of the following cash flows"], lm))
    assert abs(float(probs[0, 1] - probs[1, 1])) > 1e-3


def test_knob_table_is_monotone_and_covers_both_ends() -> None:
    meta = json.loads(META.read_text())
    rows = meta["knob_thresholds"]
    knobs = [r["knob"] for r in rows]
    thr = [r["threshold"] for r in rows]
    assert knobs[0] == 0.0 and knobs[-1] == 1.0
    assert thr[0] > 1.0 and thr[-1] == 0.0  # knob 0: never large; knob 1: always large
    assert all(a >= b for a, b in zip(thr, thr[1:]))
    assert all(a <= b for a, b in zip([r["cv_share_large"] for r in rows], [r["cv_share_large"] for r in rows][1:]))
    assert meta["cv_metrics"]["cpt95"] < 0.5  # beats random routing (about 0.69) by a wide margin in CV


@pytest.mark.skipif(not (MODELS / "encoder.onnx").exists(), reason="models/ not built (make models)")
def test_hard_domain_scores_above_easy_domain(head: ort.InferenceSession) -> None:
    """Sanity check true of this head: long moral-judgement / legal fact-pattern questions (where the
    small model loses most against the large one) score above simple general-knowledge questions."""
    from modelbuild.complexity.embed import embed_texts

    hard = [
        "In which of the two situations below does the narrator act in a way that is clearly wrong by "
        "everyday moral standards? Situation 1: I took the last cookie from my roommate's shelf without "
        "asking. Situation 2: I returned the wallet I found to the lost-and-found desk.",
        "A tenant signed a five-year lease that prohibited assignment without the landlord's consent. "
        "Two years later the tenant assigned the lease to a friend, who paid rent for a year and then "
        "stopped. The landlord sues the original tenant for the unpaid rent. Will the landlord prevail?",
    ]
    easy = [
        "Which planet is known as the Red Planet?",
        "Which country has the largest population in South America?",
    ]
    emb = embed_texts(hard + easy, MODELS / "encoder.onnx", MODELS / "tokenizer.json")
    lm = embed_texts(hard + easy, MODELS / "encoder.onnx", MODELS / "tokenizer.json", output="layer_means")
    (probs,) = head.run(["probs"], _feeds(emb, hard + easy, lm))
    assert probs[:2, 1].min() > probs[2:, 1].max()


def test_curve_metrics_on_a_toy_case() -> None:
    small = np.array([True, True, False, False])
    large = np.array([True, False, True, True])
    perfect = curves.curve_from_scores(np.array([0.0, -1.0, 1.0, 1.0]), small, large)
    np.testing.assert_allclose(perfect.accuracy, [0.5, 0.75, 1.0, 1.0, 0.75])
    assert curves.cpt(perfect, large.mean(), 1.0) == pytest.approx(0.25)  # 0.75 reached at 1 of 4
    rnd = curves.random_curve(small, large)
    assert curves.cpt(rnd, large.mean(), 1.0) == pytest.approx(1.0)
    assert curves.apgr(rnd, small.mean(), large.mean()) == pytest.approx(0.5)
    assert curves.apgr(perfect, small.mean(), large.mean()) > 0.5
