"""The safety head's lexical branch: word-piece unigrams + bigrams (modelbuild/lexical.py) scored per view.

Attacks share vocabulary across sources far better than sentence embeddings do ("ignore previous
instructions", "developer mode", "DAN", "system prompt", "stay in character"). One logistic regression per
label (jailbreak, injection) is fitted on whole prompts (the main encoder row's ids), then applied to every
view of a prompt (the same views the embedding branch scores: whole row, 32/128-token windows, overflow
rows) and max-pooled, so an attack sentence diluted by ordinary text still has a window of its own.
The runtime fuses it with the embedding branch by a fixed rule (semrouter/signals/onnx/safety.py
`fuse_logits`: the mean of the two logits); nothing about the fusion is fitted.

The exported graph is the embedding head plus `lexical_graph` on extra inputs `input_ids`/`attention_mask`
[R,T] (one row per view) giving `lex_logits` [R,2].
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

LEXICAL_LABELS = ("jailbreak", "injection")
WINDOWS = ((32, 16), (128, 64))  # (tokens, stride) of the safety views, as the router builds them
MAX_CHUNKS = 16  # overflow rows at the most (signals.jailbreak.max_chunks' default)
SEGMENTS = 16  # budget of sentence segments encoded alone, in rows (labels.json `segments`; segments.plan_segments)
MIN_DF = 3
C = 1.0  # fixed before any held-out result; not tuned


def view_ids(texts: list[str], model_dir: Path, max_chunks: int = MAX_CHUNKS,
             ) -> tuple[tuple[np.ndarray, np.ndarray], list[list[Sequence[int]]]]:
    """((input_ids, attention_mask) [N,T] of the main encoder rows, per text its views' content-token ids in
    the order semrouter's SafetyViews builds them; `max_chunks` 0 for segments, which get no overflow rows).
    Tokenizer only; no encoder run."""
    from semrouter.signals.onnx.safety import SafetyViews, WindowSpec
    from semrouter.signals.onnx.tokenize import TextTokenizer

    tok = TextTokenizer(model_dir / "tokenizer.json", 256)

    def fake(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return np.zeros((*ids.shape, 1), np.float32)

    sv = SafetyViews(tok, fake, [WindowSpec(s, t) for s, t in WINDOWS], max_chunks)
    ids, mask, out = [], [], []
    for i in range(0, len(texts), 64):
        tb = tok.encode(texts[i : i + 64])
        _, _, _, v = sv.rows(texts[i : i + 64], fake(tb.input_ids, tb.attention_mask), tb.lengths, tb.truncated,
                             tb.input_ids)
        out += v
        pad = np.zeros((len(tb.lengths), 256), np.int64)
        pm = np.zeros_like(pad)
        pad[:, : tb.input_ids.shape[1]] = tb.input_ids
        pm[:, : tb.input_ids.shape[1]] = tb.attention_mask
        ids.append(pad)
        mask.append(pm)
    return (np.concatenate(ids), np.concatenate(mask)), out


class LexicalBranch:
    """Vocabulary + one regression per label, fitted on the prompts `rows` (indices into the main rows)."""

    def __init__(self, main: tuple[np.ndarray, np.ndarray], y: np.ndarray, w: np.ndarray, vocab_size: int) -> None:
        """`main` (ids, mask) [N,T], `y` [N,2] 0/1 targets per LEXICAL_LABELS, `w` [N] sample weights."""
        from sklearn.linear_model import LogisticRegression

        from modelbuild.lexical import LexicalVocab

        self.vocab = LexicalVocab.build(main[0], main[1], vocab_size, min_df=MIN_DF)
        x = self.vocab.features(*main)
        self.clfs = []
        for j in range(len(LEXICAL_LABELS)):
            clf = LogisticRegression(C=C, class_weight="balanced", max_iter=3000)
            clf.fit(x, y[:, j].astype(int), sample_weight=w)
            self.clfs.append(clf)

    @property
    def weight(self) -> np.ndarray:
        return np.stack([c.coef_[0] for c in self.clfs], axis=1)  # [n_features, 2]

    @property
    def bias(self) -> np.ndarray:
        return np.array([c.intercept_[0] for c in self.clfs])

    def view_logits(self, views: list[Sequence[int]]) -> np.ndarray:
        """float [R,2]: each view's (content ids) logits."""
        from semrouter.signals.onnx.safety import pad_rows

        out = []
        for i in range(0, len(views), 4096):
            ids, mask = pad_rows([list(v) if len(v) else [0] for v in views[i : i + 4096]])
            out.append(self.vocab.features(ids, mask) @ self.weight + self.bias)
        return np.concatenate(out)

    def bag_max(self, bags: list[list[Sequence[int]]]) -> np.ndarray:
        """float [N,2]: per prompt the max over its views' logits."""
        flat = [v for b in bags for v in b]
        z = self.view_logits(flat)
        cuts = np.cumsum([0] + [len(b) for b in bags])
        return np.stack([z[a:b].max(axis=0) for a, b in zip(cuts[:-1], cuts[1:], strict=True)])

    def attach(self, path: Path, check_views: list[Sequence[int]]) -> None:
        """Add `lex_logits` to the exported head at `path` (new inputs input_ids/attention_mask [R,T]) and check
        the graph against `view_logits` on `check_views`."""
        import onnx
        import onnxruntime as ort
        from onnx import TensorProto, helper

        from modelbuild.lexical import lexical_graph
        from semrouter.signals.onnx.safety import pad_rows

        m = onnx.load(str(path))
        g = m.graph
        nodes, inits = lexical_graph(self.vocab, self.weight, self.bias, prefix="lex_")
        g.node.extend(nodes)
        g.initializer.extend(inits)
        g.input.extend([helper.make_tensor_value_info(n, TensorProto.INT64, ["rows", "tokens"])
                        for n in ("input_ids", "attention_mask")])
        g.output.append(helper.make_tensor_value_info("lex_logits", TensorProto.FLOAT, ["rows", len(LEXICAL_LABELS)]))
        if not any(o.domain == "ai.onnx.ml" for o in m.opset_import):
            m.opset_import.append(helper.make_opsetid("ai.onnx.ml", 2))
        onnx.checker.check_model(m)
        onnx.save(m, str(path))
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        ids, mask = pad_rows([list(v) if len(v) else [0] for v in check_views])
        dim = sess.get_inputs()[0].shape[1]
        got = sess.run(["lex_logits"], {"embedding": np.zeros((len(ids), dim), np.float32), "input_ids": ids,
                                        "attention_mask": mask})[0]
        np.testing.assert_allclose(got, self.view_logits(check_views), atol=1e-3)
