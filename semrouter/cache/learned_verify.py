"""Learned hit verifier: P(same answer) for a (new prompt, cached prompt) pair.

A tiny ONNX model (`models/cache_verifier.onnx`, trained by modelbuild/cache_verifier/train.py on a
mix of qqp, multilingual STS pairs, negations and chat-style rewrites: modelbuild/cache_verifier/mix.py)
over what the lookup already has: the two L2-normalised MiniLM embeddings
u (new prompt) and v (cached prompt) -> the SBERT pair features [u*v, |u-v|, cos] computed inside
the graph, plus the lexical features below (graded versions of the rules in verify.py).

    inputs  u float32 [B,384], v float32 [B,384], lex float32 [B,F] (+ align float32 [B,A])  ->  probs [B,2]

A model with the `align` input also reads the token alignment of the two prompts (align.py: each
content token's best partner in the other prompt, from the encoder's token states). Those need an
encoder run over the new prompt and the candidates (`TokenStates`, the encoder file named in the
sidecar, next to the model): `wants_align` says so, and `align_rows` computes them (blocking; the cache
calls it in a worker thread, and only for candidates the learned score decides).

The sidecar `cache_verifier.labels.json` lists the lexical (and alignment) feature names the model was
trained with; loading refuses a model whose lists differ from `LEX_FEATURES` / `ALIGN_FEATURES`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from semrouter.cache.align import ALIGN_FEATURES, features
from semrouter.cache.tokens import TokenStates
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

    wants_align: bool = False  # the model reads alignment features (align_rows)
    _tokens: TokenStates | None = None

    def __init__(self, model_path: str | Path, rules: Verifier, encoder_dir: str | Path | None = None) -> None:
        """`encoder_dir`: where the encoder file and tokenizer.json for alignment features are (default: the
        model's directory). Raises VerifierModelError when the model (or that encoder) is missing or does not fit."""
        path = Path(model_path)
        if not path.is_file():
            raise VerifierModelError(f"verifier model not found: {path}")
        sidecar = path.with_name(path.name.removesuffix(".onnx") + ".labels.json")
        meta: dict = {}
        if sidecar.is_file():
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
            names = tuple(meta.get("lex_features") or ())
            if names != LEX_FEATURES:
                raise VerifierModelError(f"{sidecar}: lexical features {names} != {LEX_FEATURES}")
        import onnxruntime as ort

        from semrouter.signals.onnx.sessions import session_options

        try:
            self._sess = ort.InferenceSession(str(path), session_options(1), providers=["CPUExecutionProvider"])
        except Exception as e:
            raise VerifierModelError(f"cannot load verifier model {path}: {e}") from e
        shapes = {i.name: i.shape for i in self._sess.get_inputs()}
        if set(shapes) - {"align"} != {"u", "v", "lex"}:
            raise VerifierModelError(f"{path}: inputs {sorted(shapes)} != ['lex', 'u', 'v'] (+ 'align')")
        dim, nlex = shapes["u"][1], shapes["lex"][1]
        if nlex != len(LEX_FEATURES):
            raise VerifierModelError(f"{path}: {nlex} lexical features, expected {len(LEX_FEATURES)}")
        self.dimension = int(dim)
        self.path = path
        self.rules = rules
        self.wants_align = "align" in shapes
        self._tokens: TokenStates | None = None
        if self.wants_align:
            if shapes["align"][1] != len(ALIGN_FEATURES) or tuple(meta.get("align_features") or ()) != ALIGN_FEATURES:
                raise VerifierModelError(f"{path}: alignment features do not match {ALIGN_FEATURES}")
            where = Path(encoder_dir) if encoder_dir is not None else path.parent
            encoder = where / str(meta.get("encoder") or "encoder.int8.onnx")
            tokenizer = where / "tokenizer.json"
            try:
                self._tokens = TokenStates(encoder, tokenizer)
            except Exception as e:
                raise VerifierModelError(f"cannot load the encoder for alignment features {encoder}: {e}") from e

    @property
    def encoder_runs(self) -> int:
        """Encoder runs made for alignment features so far (0 without them)."""
        return 0 if self._tokens is None else self._tokens.runs

    def align_rows(self, query: str, cached: Sequence[str]) -> np.ndarray | None:
        """[len(cached), A] alignment features of (cached[i], query); one encoder run (blocking, ~1-3 ms
        for short prompts). None when the model does not use them."""
        if self._tokens is None:
            return None
        if not cached:
            return np.zeros((0, len(ALIGN_FEATURES)), dtype=np.float32)
        (qt, qc), *rest = self._tokens([query, *cached])
        return np.stack([features(ct, cc, qt, qc) for ct, cc in rest])

    def score(self, query: str, query_vec: np.ndarray, cached: Sequence[str],
              cached_vecs: np.ndarray, align: np.ndarray | None = None) -> np.ndarray:
        """P(same answer) of (query, cached[i]) for each i: float32 [len(cached)]. `align`: align_rows'
        result when the model wants it (computed here, blocking, when not given)."""
        if not cached:
            return np.zeros(0, dtype=np.float32)
        v = np.asarray(cached_vecs, dtype=np.float32).reshape(len(cached), -1)
        u = np.broadcast_to(np.asarray(query_vec, dtype=np.float32).reshape(1, -1), v.shape)
        if align is None and self.wants_align:
            align = self.align_rows(query, cached)
        return self.score_arrays(np.ascontiguousarray(u), v, lex_matrix(self.rules, query, cached), align)

    def score_arrays(self, u: np.ndarray, v: np.ndarray, lex: np.ndarray,
                     align: np.ndarray | None = None) -> np.ndarray:
        """P(same answer) from prepared inputs (u, v [B,dim] normalised; lex [B,F]; align [B,A] when the
        model wants it). Raises ValueError when `align` is missing for a model that needs it."""
        feeds = {"u": u.astype(np.float32, copy=False), "v": v.astype(np.float32, copy=False),
                 "lex": lex.astype(np.float32, copy=False)}
        if self.wants_align:
            if align is None:
                raise ValueError("this verifier model needs alignment features (align_rows)")
            feeds["align"] = align.astype(np.float32, copy=False)
        (probs,) = self._sess.run(["probs"], feeds)
        return probs[:, 1]
