"""ONNX Runtime sessions: the sentence encoder and the small `embedding -> probs` heads."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import onnxruntime as ort

_OPT_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def session_options(intra_op_threads: int, optimization: str = "all",
                    spin: Literal["off", "run", "always"] = "off") -> ort.SessionOptions:
    """CPU options: a fixed small thread pool; by default no spinning, so idle cores stay free for the event
    loop and Envoy. `spin` ("run" or "always") lets the pool's threads busy-wait for work: a worker that is
    already awake takes its share of each operator at once; with "run" they stop spinning when a run ends
    (ORT's session.force_spinning_stop), so between requests the second core is free."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = intra_op_threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = _OPT_LEVELS[optimization]
    so.add_session_config_entry("session.intra_op.allow_spinning", "0" if spin == "off" else "1")
    if spin == "run":
        so.add_session_config_entry("session.force_spinning_stop", "1")
    so.log_severity_level = 3
    return so


def _load(path: Path, so: ort.SessionOptions) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])


@dataclass(frozen=True, slots=True)
class Encoded:
    """One encoder run: the outputs the caller asked for (None where it did not)."""

    embedding: np.ndarray  # [B,D] L2-normalised sentence embedding
    tokens: np.ndarray | None = None  # [B,T,D] last hidden state
    layer_means: np.ndarray | None = None  # [B,L,D] masked mean of each hidden state (embeddings, then layers)


class Encoder:
    """input_ids/attention_mask [B,T] -> `Encoded` (sentence embedding, and on request the token states and
    the per-layer means). ONNX Runtime runs the whole graph either way; asking for less saves the copies."""

    def __init__(self, path: Path, so: ort.SessionOptions,
                 outputs: Sequence[str] = ("sentence_embedding", "token_embeddings")) -> None:
        """`outputs`: the ones the graph must have (the multilingual encoder has only `sentence_embedding`)."""
        self.session = _load(path, so)
        names = {o.name for o in self.session.get_outputs()}
        missing = set(outputs) - names
        if missing:
            raise ValueError(f"{path}: encoder lacks outputs {sorted(missing)}")
        self.has_layer_means = "layer_means" in names  # older model dirs lack it: re-run `make models`
        self.dim = int(self.session.get_outputs()[0].shape[-1])
        self.runs = 0  # session runs so far (read by tests and metrics)

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray, tokens: bool = False,
                 layers: bool = False) -> Encoded:
        outputs = ["sentence_embedding"]
        outputs += (["token_embeddings"] if tokens else []) + (["layer_means"] if layers else [])
        res = dict(zip(outputs, self.session.run(outputs, {"input_ids": input_ids, "attention_mask": attention_mask}),
                       strict=True))
        self.runs += 1
        return Encoded(
            embedding=res["sentence_embedding"].astype(np.float32, copy=False),
            tokens=res.get("token_embeddings"),
            layer_means=res.get("layer_means"),
        )


@dataclass(frozen=True, slots=True)
class Head:
    """A classifier on sentence embeddings: input `embedding` [B,D] (+ optional `features` [B,F], + optional
    `input_ids`/`attention_mask` [B,T] of the same tokenisation the encoder saw, + optional `layer_means`
    [B,L,D] from the same encoder run) -> `probs`."""

    name: str
    session: ort.InferenceSession
    labels: tuple[str, ...]
    wants_features: bool
    wants_tokens: bool = False
    wants_layers: bool = False
    output_names: tuple[str, ...] = ("probs",)

    @classmethod
    def load(cls, model_dir: Path, name: str, so: ort.SessionOptions) -> Head:
        sess = _load(model_dir / f"{name}.onnx", so)
        inputs = {i.name for i in sess.get_inputs()}
        if "embedding" not in inputs or "probs" not in {o.name for o in sess.get_outputs()}:
            raise ValueError(f"{name}.onnx must take `embedding` and produce `probs`")
        lpath = model_dir / f"{name}.labels.json"
        labels: list[str] = []
        if lpath.is_file():
            data = json.loads(lpath.read_text())
            labels = list(data["labels"] if isinstance(data, dict) else data)
        return cls(
            name=name, session=sess, labels=tuple(labels), wants_features="features" in inputs,
            wants_tokens={"input_ids", "attention_mask"} <= inputs, wants_layers="layer_means" in inputs,
            output_names=tuple(o.name for o in sess.get_outputs()),
        )

    def __call__(
        self,
        embedding: np.ndarray,
        features: np.ndarray | None = None,
        tokens: tuple[np.ndarray, np.ndarray] | None = None,
        layer_means: np.ndarray | None = None,
    ) -> np.ndarray:
        return self.run(("probs",), embedding, features, tokens, layer_means)[0]

    def run(
        self,
        outputs: Sequence[str],
        embedding: np.ndarray,
        features: np.ndarray | None = None,
        tokens: tuple[np.ndarray, np.ndarray] | None = None,
        layer_means: np.ndarray | None = None,
    ) -> list[np.ndarray]:
        """The named outputs (float32) of one run; `__call__` is `run(("probs",), ...)[0]`."""
        feeds = {"embedding": embedding.astype(np.float32, copy=False)}
        if self.wants_features:
            if features is None:
                raise ValueError(f"{self.name} needs `features`")
            feeds["features"] = features.astype(np.float32, copy=False)
        if self.wants_tokens:
            if tokens is None:
                raise ValueError(f"{self.name} needs `input_ids` and `attention_mask`")
            feeds["input_ids"], feeds["attention_mask"] = tokens
        if self.wants_layers:
            if layer_means is None:
                raise ValueError(f"{self.name} needs `layer_means` from the encoder")
            feeds["layer_means"] = layer_means.astype(np.float32, copy=False)
        return [np.asarray(o, dtype=np.float32) for o in self.session.run(list(outputs), feeds)]
