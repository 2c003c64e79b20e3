"""Write the verifier MLP as a tiny ONNX graph (onnx.helper; byte-reproducible, no torch export).

Inputs  u float32 [B,dim], v float32 [B,dim] (L2-normalised), lex float32 [B,F]
        (+ align float32 [B,A]).
Graph   x = [u*v, |u-v|, sum(u*v), lex (, align)] (compact: [sum(u*v), lex (, align)]);
        x = (x - mean) / std; h = relu(x W1 + b1) (repeated per
        hidden layer); probs = softmax(h Wo + bo)  ->  probs float32 [B,2], probs[:,1] = same answer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

OPSET = 17


def to_onnx(layers: list[tuple[np.ndarray, np.ndarray]], mean: np.ndarray, std: np.ndarray, dim: int,
            n_lex: int, path: Path, n_align: int = 0, compact: bool = False) -> None:
    """`layers`: [(W [in,out], b [out])...], ReLU between them; the last layer has 2 outputs. `n_align` > 0
    adds the `align` input (token-alignment features, semrouter/cache/align.py); `compact`: the features are
    [cos, lex (, align)] (u and v enter through their cosine only)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    f32 = np.float32
    inits = [
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axes1"),
        numpy_helper.from_array(mean.astype(f32), "feat_mean"),
        numpy_helper.from_array(std.astype(f32), "feat_std"),
    ]
    nodes = [
        helper.make_node("Mul", ["u", "v"], ["uv"]),
        *([] if compact else [helper.make_node("Sub", ["u", "v"], ["diff"]),
                              helper.make_node("Abs", ["diff"], ["absdiff"])]),
        helper.make_node("ReduceSum", ["uv", "axes1"], ["cos"], keepdims=1),
        helper.make_node("Concat", [*([] if compact else ["uv", "absdiff"]), "cos", "lex",
                                    *(["align"] if n_align else [])], ["feats"], axis=1),
        helper.make_node("Sub", ["feats", "feat_mean"], ["centred"]),
        helper.make_node("Div", ["centred", "feat_std"], ["x0"]),
    ]
    cur = "x0"
    for i, (w, b) in enumerate(layers):
        inits += [numpy_helper.from_array(w.astype(f32), f"w{i}"), numpy_helper.from_array(b.astype(f32), f"b{i}")]
        out = f"z{i}"
        nodes.append(helper.make_node("Gemm", [cur, f"w{i}", f"b{i}"], [out]))
        if i < len(layers) - 1:
            nodes.append(helper.make_node("Relu", [out], [f"h{i}"]))
            out = f"h{i}"
        cur = out
    nodes.append(helper.make_node("Softmax", [cur], ["probs"], axis=1))
    graph = helper.make_graph(
        nodes, "cache_verifier",
        [helper.make_tensor_value_info("u", TensorProto.FLOAT, ["batch", dim]),
         helper.make_tensor_value_info("v", TensorProto.FLOAT, ["batch", dim]),
         helper.make_tensor_value_info("lex", TensorProto.FLOAT, ["batch", n_lex]),
         *([helper.make_tensor_value_info("align", TensorProto.FLOAT, ["batch", n_align])] if n_align else [])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 2])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="semrouter-modelbuild")
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
