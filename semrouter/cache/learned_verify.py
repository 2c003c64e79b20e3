"""Learned hit verifier: P(same answer) for a (new prompt, cached prompt) pair.

A tiny ONNX model (`models/cache_verifier.onnx`, trained by modelbuild/cache_verifier/train.py on a
mix of qqp, multilingual STS pairs, negations and chat-style rewrites: modelbuild/cache_verifier/mix.py)
over what the lookup already has: the two L2-normalised MiniLM embeddings
u (new prompt) and v (cached prompt) -> the SBERT pair features [u*v, |u-v|, cos] computed inside
the graph, plus the lexical features below (graded versions of the rules in verify.py).

    inputs  u float32 [B,384], v float32 [B,384], lex float32 [B,F]  ->  probs float32 [B,2]

The sidecar `cache_verifier.labels.json` lists the lexical feature names the model was trained
with; loading refuses a model whose list differs from `LEX_FEATURES`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from semrouter.cache.verify import Signals, Verifier

LEX_FEATURES: tuple[str, ...] = (
    "jaccard", "content_jaccard", "numbers_differ", "numbers_only_one", "negation_differs", "antonym",
    "units_differ", "specific", "capitalised", "rare", "only_content", "substitution", "length_ratio",
    "question_word_differs", "first_question_word_differs", "swapped", "char_jaccard", "latin",
    "rules_ok",
)
_CAPS = {"numbers_only_one": 4.0, "specific": 4.0, "capitalised": 4.0, "rare": 4.0, "only_content": 8.0}


class VerifierModelError(RuntimeError):
    """The verifier model is missing, unreadable or does not fit (wrong features or dimension)."""


def lex_vector(s: Signals) -> np.ndarray:
    """The lexical features of one pair, in `LEX_FEATURES` order, scaled to [0, 1]."""
    out = np.empty(len(LEX_FEATURES), dtype=np.float32)
    for i, name in enumerate(LEX_FEATURES):
        x = float(getattr(s, name))
        cap = _CAPS.get(name)
        out[i] = min(x, cap) / cap if cap else x
    return out


def lex_matrix(rules: Verifier, query: str, cached: Sequence[str]) -> np.ndarray:
    """[len(cached), F] lexical features of (query, c) for each cached prompt c."""
    if not cached:
        return np.zeros((0, len(LEX_FEATURES)), dtype=np.float32)
    return np.stack([lex_vector(s) for s in rules.signals_many(query, cached)])


class LearnedVerifier:
    """Scores candidate pairs with the ONNX verifier (onnxruntime, one intra-op thread)."""

    def __init__(self, model_path: str | Path, rules: Verifier) -> None:
        path = Path(model_path)
        if not path.is_file():
            raise VerifierModelError(f"verifier model not found: {path}")
        sidecar = path.with_name(path.name.removesuffix(".onnx") + ".labels.json")
        if sidecar.is_file():
            names = tuple(json.loads(sidecar.read_text(encoding="utf-8")).get("lex_features") or ())
            if names != LEX_FEATURES:
                raise VerifierModelError(f"{sidecar}: lexical features {names} != {LEX_FEATURES}")
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        try:
            self._sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise VerifierModelError(f"cannot load verifier model {path}: {e}") from e
        shapes = {i.name: i.shape for i in self._sess.get_inputs()}
        if set(shapes) != {"u", "v", "lex"}:
            raise VerifierModelError(f"{path}: inputs {sorted(shapes)} != ['lex', 'u', 'v']")
        dim, nlex = shapes["u"][1], shapes["lex"][1]
        if nlex != len(LEX_FEATURES):
            raise VerifierModelError(f"{path}: {nlex} lexical features, expected {len(LEX_FEATURES)}")
        self.dimension = int(dim)
        self.path = path
        self.rules = rules

    def score(self, query: str, query_vec: np.ndarray, cached: Sequence[str],
              cached_vecs: np.ndarray) -> np.ndarray:
        """P(same answer) of (query, cached[i]) for each i: float32 [len(cached)]."""
        if not cached:
            return np.zeros(0, dtype=np.float32)
        v = np.asarray(cached_vecs, dtype=np.float32).reshape(len(cached), -1)
        u = np.broadcast_to(np.asarray(query_vec, dtype=np.float32).reshape(1, -1), v.shape)
        return self.score_arrays(np.ascontiguousarray(u), v, lex_matrix(self.rules, query, cached))

    def score_arrays(self, u: np.ndarray, v: np.ndarray, lex: np.ndarray) -> np.ndarray:
        """P(same answer) from prepared inputs (u, v [B,dim] normalised; lex [B,F])."""
        (probs,) = self._sess.run(["probs"], {"u": u.astype(np.float32, copy=False),
                                              "v": v.astype(np.float32, copy=False),
                                              "lex": lex.astype(np.float32, copy=False)})
        return probs[:, 1]
