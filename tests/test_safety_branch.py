"""The safety branch's training pieces (modelbuild/safety_branch.py): the layer copy and the views it pools."""

from __future__ import annotations

import numpy as np
import pytest

from modelbuild.safety_branch import BRANCH_LAYER, bert_layer_weights, make_layer, pool
from semrouter.signals.onnx.safety import DEFAULT_WINDOWS, window_rows, window_spans


def test_pooled_views_are_the_runtime_views() -> None:
    rng = np.random.default_rng(0)
    for length in (3, 40, 150):
        states = rng.normal(size=(length, 384)).astype(np.float32)
        spans = np.array([(0, length)] + [(a + 1, b + 1) for a, b in window_spans(length - 2, DEFAULT_WINDOWS)[1:]])
        np.testing.assert_allclose(pool(states, spans), window_rows(states, length, DEFAULT_WINDOWS), atol=1e-5)


def test_the_layer_copy_is_the_encoders_last_layer_before_training() -> None:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from modelbuild.export_encoder import model_source_dir

    bert = transformers.BertModel.from_pretrained(str(model_source_dir()), attn_implementation="eager").eval()
    ids = torch.tensor([[101, 2129, 2079, 1045, 2862, 6764, 2011, 2946, 1029, 102, 0, 0]])
    mask = (ids > 0).long()
    with torch.no_grad():
        hidden = bert(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
        out = make_layer(bert_layer_weights())(hidden[BRANCH_LAYER], mask.float())
    real = mask[0].bool()
    np.testing.assert_allclose(out[0, real].numpy(), hidden[BRANCH_LAYER + 1][0, real].numpy(), atol=1e-4)
