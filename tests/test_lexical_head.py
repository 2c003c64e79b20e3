"""The category head's word-piece branch: ONNX graph == numpy features, and the shipped head uses the tokens."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from modelbuild.lexical import LexicalVocab, lexical_graph
from semrouter.signals.onnx.sessions import Head, session_options
from semrouter.signals.onnx.tokenize import TextTokenizer
from tests.onnx_models import ensure_models

TEXTS = [
    "the plaintiff filed a motion to dismiss the appeal",
    "the court granted the motion and the plaintiff appealed",
    "solve the quadratic equation and plot the parabola",
    "the parabola of the quadratic equation opens upward",
    "a motion to dismiss a quadratic equation",  # bigrams from both topics
    "ok",
]


@pytest.fixture(scope="module")
def tok() -> TextTokenizer:
    return TextTokenizer(ensure_models() / "tokenizer.json", 64)


def _graph_model(vocab: LexicalVocab, w: np.ndarray, b: np.ndarray) -> ort.InferenceSession:
    nodes, inits = lexical_graph(vocab, w, b)
    g = helper.make_graph(
        nodes, "lex", [helper.make_tensor_value_info(n, TensorProto.INT64, ["b", "t"]) for n in ("input_ids", "attention_mask")],
        [helper.make_tensor_value_info("lex_logits", TensorProto.FLOAT, ["b", w.shape[1]])], inits,
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])


def test_graph_matches_numpy_features(tok: TextTokenizer) -> None:
    tb = tok.encode(TEXTS)
    vocab = LexicalVocab.build(tb.input_ids, tb.attention_mask, tok.vocab_size, min_df=2)
    assert vocab.n_features > 5 and vocab.bigram_keys.size > 0
    rng = np.random.default_rng(0)
    w = rng.normal(size=(vocab.n_features, 3)).astype(np.float32)
    w[0] = 0.0
    b = np.array([0.1, -0.2, 0.3], np.float32)
    want = vocab.features(tb.input_ids, tb.attention_mask) @ w + b
    got = _graph_model(vocab, w, b).run(["lex_logits"], {"input_ids": tb.input_ids, "attention_mask": tb.attention_mask})[0]
    np.testing.assert_allclose(got, want, atol=1e-5)
    # padding must not change a row: the same texts one at a time give the same logits
    for i, t in enumerate(TEXTS):
        one = tok.encode([t])
        got1 = _graph_model(vocab, w, b).run(["lex_logits"], {"input_ids": one.input_ids, "attention_mask": one.attention_mask})[0]
        np.testing.assert_allclose(got1[0], got[i], atol=1e-5)
    # a text with no known word piece has zero features: logits == bias
    assert np.allclose(got[TEXTS.index("ok")], b)


def test_features_are_unit_norm_and_skip_special_tokens(tok: TextTokenizer) -> None:
    tb = tok.encode(TEXTS)
    vocab = LexicalVocab.build(tb.input_ids, tb.attention_mask, tok.vocab_size, min_df=1)
    x = vocab.features(tb.input_ids, tb.attention_mask)
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1))).ravel()
    # every occurrence counts in the norm, so repeats (the "the"s) can only push a row above unit length
    assert (norms >= 1.0 - 1e-6).all()
    assert abs(norms[TEXTS.index("ok")] - 1.0) < 1e-6  # one known word piece
    for special in (tok.cls_id, tok.sep_id, tok.pad_id):
        assert vocab.unigram[special] == 0


def test_shipped_category_head_reads_tokens(tok: TextTokenizer) -> None:
    mdir = ensure_models()
    head = Head.load(mdir, "category_head", session_options(1))
    assert head.wants_tokens, "the shipped category head has a word-piece branch"
    text = "What remedies does a tenant have when the landlord breaches the lease?"
    tb = tok.encode([text])
    emb = np.zeros((1, 384), np.float32)  # no semantic signal at all: only the word pieces can tell
    p_text = head(emb, tokens=(tb.input_ids, tb.attention_mask))[0]
    blank = tok.encode([""])
    p_blank = head(emb, tokens=(blank.input_ids, blank.attention_mask))[0]
    assert abs(float(p_text.sum()) - 1.0) < 1e-5
    law = head.labels.index("law")
    assert p_text[law] > 3 * p_blank[law]  # 3.7x with the mix-trained head (lexical beta 0.5; 0.75 before)
    # the word pieces raise law the most (with a zero embedding the MLP's prior decides the plain argmax: health 0.14
    # vs law 0.12 for the mix-trained head)
    assert int(np.argmax(p_text / p_blank)) == law, dict(zip(head.labels, (p_text / p_blank).round(2)))
    with pytest.raises(ValueError, match="input_ids"):
        head(emb)


def test_category_head_stays_small() -> None:
    art = Path(__file__).resolve().parents[1] / "modelbuild" / "artifacts" / "category_head.onnx"
    assert art.stat().st_size <= 5 * 1024 * 1024
