"""Write a LinearHead as a tiny ONNX graph (onnx.helper; no torch needed).

Input  `embedding` float32 [B,384] (L2-normalised sentence embedding); with a word-piece route also
       `input_ids`, `attention_mask` int64 [B,T] (the runtime tokenizer's, as the encoder got them).
Outputs `probs` float32 [B,2] = (1 - score, score), score = (1 + expected gain of the large model) / 2,
        `outcomes` float32 [B,4] = P(both ok, only small ok, only large ok, both wrong).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from modelbuild.complexity.head import LinearHead

OPSET = 17


def to_onnx(head: LinearHead, path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    dim = head.subject_w.shape[0]
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
    nodes = [
        helper.make_node("Gemm", ["embedding", "subject_w", "subject_b"], ["subject_logits"]),
        helper.make_node("Softmax", ["subject_logits"], ["subject_probs"], axis=1),
        helper.make_node("MatMul", ["subject_probs", "subject_table"], ["via_subject"]),
        helper.make_node("Gemm", ["embedding", "outcome_w", "outcome_b"], ["outcome_logits"]),
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
