"""Write a LinearHead as a tiny ONNX graph (onnx.helper; no torch needed).

Input  `embedding` float32 [B,384] (L2-normalised sentence embedding); with a word-piece route also
       `input_ids`, `attention_mask` int64 [B,T] (the runtime tokenizer's, as the encoder got them); when a
       route reads lower layers also `layer_means` float32 [B,7,384] (the encoder's output of that name).
Outputs `probs` float32 [B,2] = (1 - score, score), score = (1 + expected gain of the large model) / 2,
        `outcomes` float32 [B,4] = P(both ok, only small ok, only large ok, both wrong).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from modelbuild.complexity.head import LinearHead

if TYPE_CHECKING:
    import onnx

OPSET = 17


def to_onnx(head: LinearHead, path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    dim = head.subject_w.shape[0] // (1 + len(head.subject_layers))  # the embedding's width
    score_col = 0.5 + 0.5 * np.asarray(head.score_weights)  # outcomes sum to 1, so probs = outcomes @ Q exactly
    q = np.stack([1.0 - score_col, score_col], axis=1).astype(np.float32)
    inits = [
        numpy_helper.from_array(head.subject_w, "subject_w"),
        numpy_helper.from_array(head.subject_b, "subject_b"),
        numpy_helper.from_array((head.blend * head.subject_table).astype(np.float32), "subject_table"),
        numpy_helper.from_array(head.outcome_w, "outcome_w"),
        numpy_helper.from_array(head.outcome_b, "outcome_b"),
        numpy_helper.from_array(np.array(1.0 - head.blend, dtype=np.float32), "direct_weight"),
        numpy_helper.from_array(q, "score_q"),
    ]
    inputs = [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", dim])]
    opsets = [helper.make_opsetid("", OPSET)]
    nodes: list[onnx.NodeProto] = []
    if head.wants_layers:
        inputs.append(helper.make_tensor_value_info("layer_means", TensorProto.FLOAT, ["batch", "layers", dim]))
    x_subject = _route_input(head.subject_layers, "subject", dim, nodes, inits)
    x_outcome = _route_input(head.outcome_layers, "outcome", dim, nodes, inits)
    nodes += [
        helper.make_node("Gemm", [x_subject, "subject_w", "subject_b"], ["subject_logits"]),
        helper.make_node("Softmax", ["subject_logits"], ["subject_probs"], axis=1),
        helper.make_node("MatMul", ["subject_probs", "subject_table"], ["via_subject"]),
        helper.make_node("Gemm", [x_outcome, "outcome_w", "outcome_b"], ["outcome_logits"]),
        helper.make_node("Softmax", ["outcome_logits"], ["emb_direct_probs" if head.lexical is not None else "direct_probs"], axis=1),
    ]
    if head.lexical is not None:
        from modelbuild.lexical import lexical_graph

        assert head.lex_w is not None and head.lex_b is not None
        lex_nodes, lex_inits = lexical_graph(head.lexical, head.lex_w, head.lex_b, prefix="lex_")
        nodes += lex_nodes
        inits += lex_inits
        inits += [
            numpy_helper.from_array(np.array(1.0 - head.lex_weight, dtype=np.float32), "emb_direct_weight"),
            numpy_helper.from_array(np.array(head.lex_weight, dtype=np.float32), "lex_direct_weight"),
        ]
        nodes += [
            helper.make_node("Softmax", ["lex_logits"], ["lex_probs"], axis=1),
            helper.make_node("Mul", ["emb_direct_probs", "emb_direct_weight"], ["emb_direct_part"]),
            helper.make_node("Mul", ["lex_probs", "lex_direct_weight"], ["lex_direct_part"]),
            helper.make_node("Add", ["emb_direct_part", "lex_direct_part"], ["direct_probs"]),
        ]
        inputs += [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "seq"]) for n in ("input_ids", "attention_mask")]
        opsets.append(helper.make_opsetid("ai.onnx.ml", 3))
    nodes += [
        helper.make_node("Mul", ["direct_probs", "direct_weight"], ["direct"]),
        helper.make_node("Add", ["via_subject", "direct"], ["outcomes"]),
        helper.make_node("MatMul", ["outcomes", "score_q"], ["probs"]),
    ]
    graph = helper.make_graph(
        nodes,
        "complexity_head",
        inputs,
        [
            helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 2]),
            helper.make_tensor_value_info("outcomes", TensorProto.FLOAT, ["batch", 4]),
        ],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=opsets, producer_name="semrouter-modelbuild")
    model.ir_version = 8  # readable by any onnxruntime >= 1.10
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))


def _route_input(layers: tuple[int, ...], route: str, dim: int, nodes: list[onnx.NodeProto],
                 inits: list[onnx.TensorProto]) -> str:
    """Nodes computing `route_input` (head.py): embedding ++ each picked layer mean, L2-normalised."""
    from onnx import helper, numpy_helper

    if not layers:
        return "embedding"
    p = f"{route}_layers_"
    inits += [
        numpy_helper.from_array(np.array(layers, dtype=np.int64), p + "idx"),
        numpy_helper.from_array(np.array(1e-12, dtype=np.float32), p + "eps"),
        numpy_helper.from_array(np.array([0, len(layers) * dim], dtype=np.int64), p + "shape"),
    ]
    nodes += [
        helper.make_node("Gather", ["layer_means", p + "idx"], [p + "picked"], axis=1),
        helper.make_node("ReduceL2", [p + "picked"], [p + "norm"], axes=[2], keepdims=1),
        helper.make_node("Max", [p + "norm", p + "eps"], [p + "norm_safe"]),
        helper.make_node("Div", [p + "picked", p + "norm_safe"], [p + "unit"]),
        helper.make_node("Reshape", [p + "unit", p + "shape"], [p + "flat"]),
        helper.make_node("Concat", ["embedding", p + "flat"], [p + "input"], axis=1),
    ]
    return p + "input"
