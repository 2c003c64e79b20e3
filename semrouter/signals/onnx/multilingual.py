"""The multilingual category: multilingual-e5-small + its category head, for prompts the English classifier is
not trusted on (`signals.multilingual`).

The files come from `make models` (modelbuild/export_e5.py, its own `manifest.json` in `model_dir`). They are
optional: `MultilingualCategory.load` returns None when the directory or a file is missing (the analyzer logs it
once and keeps the language gate). Runs in the analyzer's worker thread, only on the rows of a batch whose
detected language is in `signals.multilingual.languages`, after the language signal has answered; English
prompts reach it only for the second opinion (`signals.multilingual.second_opinion`: the English classifier's top
probability under `below`; `needs_second_opinion`, `fuse_second_opinion`). One pass: tokenise ("query: " + text, SentencePiece, head+tail truncation), encode (int8, masked mean,
L2), head -> probabilities over the head's 14 categories, restricted and renormalised to the configured ones.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from semrouter.signals.config import MultilingualConfig
from semrouter.signals.onnx.manifest import sha256_file
from semrouter.signals.onnx.sessions import Encoder, Head
from semrouter.signals.onnx.tokenize import Normaliser, UnigramTokenizer

HEAD = "e5_category_head"
TOKENIZER = ("tokenizer.model", "tokenizer.nfkc.json")
ENCODER = ("encoder.int8.onnx", "encoder.int8.onnx.data")  # the graph and its weights (ONNX external data)
REQUIRED = ("manifest.json", *TOKENIZER, *ENCODER, f"{HEAD}.onnx", f"{HEAD}.labels.json")


class MultilingualCategory:
    """texts -> category probabilities [B,K] over `labels`. Thread-safe (ONNX sessions, stateless tokenizer)."""

    def __init__(self, tokenizer: UnigramTokenizer, encoder: Encoder, head: Head, labels: Sequence[str],
                 prefix: str) -> None:
        self.tokenizer, self.encoder, self.head, self.prefix = tokenizer, encoder, head, prefix
        self.labels = tuple(labels)
        self._idx = np.array([head.labels.index(x) for x in self.labels], dtype=np.int64)
        self.runs = 0  # passes so far (tests and metrics read it)

    @classmethod
    def missing(cls, model_dir: Path) -> list[str]:
        """The required files absent from `model_dir` (empty: present)."""
        return [n for n in REQUIRED if not (model_dir / n).is_file()]

    @classmethod
    def load(cls, cfg: MultilingualConfig, so: ort.SessionOptions, head_so: ort.SessionOptions,
             keep: Sequence[str] = ()) -> MultilingualCategory | None:
        """The model in `cfg.model_dir`, or None when a file is missing or the head lacks a configured category
        (`keep`: the configured category names; empty = the head's). Raises ValueError when a file does not match
        the directory's manifest (a partial copy: rebuild with `make models`)."""
        mdir = Path(cfg.model_dir)
        if cls.missing(mdir):
            return None
        manifest = json.loads((mdir / "manifest.json").read_text())
        for name in (*TOKENIZER, *ENCODER, f"{HEAD}.onnx"):
            if sha256_file(mdir / name) != manifest.get("files", {}).get(name):
                raise ValueError(f"{mdir / name} does not match {mdir}/manifest.json; rebuild it with `make models`")
        head = Head.load(mdir, HEAD, head_so)
        if keep and not set(keep) <= set(head.labels):
            return None
        tok = UnigramTokenizer(mdir / TOKENIZER[0], Normaliser.load(mdir / TOKENIZER[1]), cfg.max_tokens)
        return cls(tok, Encoder(mdir / ENCODER[0], so, outputs=("sentence_embedding",)), head,
                   tuple(keep) or head.labels, str(manifest.get("query_prefix", "query: ")))

    @property
    def dim(self) -> int:
        """The sentence embedding's size (multilingual-e5-small: 384)."""
        return self.encoder.dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """float32 [len(texts), dim] sentence embeddings, L2-normalised ("query: " + text, as the head reads them;
        the semantic cache's multilingual spaces use them). Blocking: call it in a worker thread."""
        tb = self.tokenizer.encode([self.prefix + t for t in texts])
        emb = self.encoder(tb.input_ids, tb.attention_mask).embedding
        self.runs += 1
        return np.asarray(emb, dtype=np.float32)

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """[len(texts), len(labels)] probabilities (rows sum to 1)."""
        p = self.head(self.embed(texts))[:, self._idx]
        return p / np.maximum(p.sum(axis=1, keepdims=True), 1e-12)


def needs_second_opinion(probs: np.ndarray, below: float) -> np.ndarray:
    """bool [N]: the rows of classifier probabilities `probs` [N,K] whose top probability is under `below` (those
    get the e5 head's second opinion; a confident row keeps the classifier's answer and costs no e5 pass)."""
    p = np.asarray(probs)
    return p.max(axis=1) < below if p.size else np.zeros(len(p), dtype=bool)


def fuse_second_opinion(classifier: np.ndarray, e5: np.ndarray, weight: float, temperature: float) -> np.ndarray:
    """[N,K] softmax((log classifier + weight * log e5) / temperature) of two [N,K] probability arrays over the same
    labels in the same order (rows sum to 1). Raises ValueError on a shape mismatch."""
    a, b = np.asarray(classifier, dtype=np.float64), np.asarray(e5, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"second opinion: classifier {a.shape} and e5 {b.shape} probabilities differ in shape")
    z = (np.log(a + 1e-12) + weight * np.log(b + 1e-12)) / temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
