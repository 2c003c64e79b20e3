"""The per-category log-prior correction (`signals.classifier.category_bias`): its arithmetic, its config checks,
and the analyzer applying it to the trained head's probabilities."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from semrouter.signals.config import ClassifierConfig
from semrouter.signals.onnx.category_prior import CategoryPrior

LABELS = ("math", "physics", "engineering")


def test_zero_bias_leaves_probabilities_unchanged() -> None:
    p = np.array([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6]], np.float32)
    prior = CategoryPrior(LABELS, {})
    assert prior.is_identity
    np.testing.assert_allclose(prior.apply(p), p, atol=1e-6)


def test_bias_moves_a_close_call_and_rows_still_sum_to_one() -> None:
    p = np.array([[0.45, 0.15, 0.40], [0.05, 0.05, 0.90]], np.float32)
    prior = CategoryPrior(LABELS, {"engineering": 0.3})
    q = prior.apply(p)
    assert q[0].argmax() == 2  # 0.40 * e^0.3 = 0.54 > 0.45: the close call flips
    assert q[1].argmax() == 2 and q[1, 2] > p[1, 2]
    np.testing.assert_allclose(q.sum(1), 1.0, atol=1e-6)
    # exactly softmax(log p + bias)
    z = np.log(p[0].astype(np.float64)) + np.array([0.0, 0.0, 0.3])
    np.testing.assert_allclose(q[0], np.exp(z) / np.exp(z).sum(), atol=1e-6)


def test_a_bias_for_an_unknown_category_names_the_key() -> None:
    with pytest.raises(ValueError, match="'maths' is not a category"):
        CategoryPrior(LABELS, {"maths": 0.1})


def test_a_head_category_that_is_not_configured_is_ignored() -> None:
    prior = CategoryPrior(("math", "physics"), {"engineering": 1.0, "physics": 0.5}, known=LABELS)
    assert prior.bias.tolist() == [0.0, 0.5]


def test_wrong_width_is_refused() -> None:
    with pytest.raises(ValueError, match="expected"):
        CategoryPrior(LABELS, {}).apply(np.ones((1, 4)) / 4)


@pytest.mark.parametrize("bad", [{"math": 7.0}, {"math": float("nan")}, {" ": 0.1}])
def test_config_refuses_out_of_range_or_unnamed_biases(bad: dict[str, float]) -> None:
    with pytest.raises(ValidationError, match="category_bias"):
        ClassifierConfig(category_bias=bad)
