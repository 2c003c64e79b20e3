"""The jailbreak exemplar memory as an ONNX model (`jailbreak_memory.onnx`, read by semrouter's SafetyScorer).

    embedding float32 [R, 384 (+ position features)] -> probs float32 [R, 1]

Each row is one view the safety head scores (the first 384 columns: the view's MiniLM embedding; any further
columns, the head's position features, are ignored). The row is scaled to unit length and scored against the
stored views (2-bit codes, modelbuild/category_memory.MemoryVote's quantisation: s = q . m_hat computed as an
integer product, plus q . lo so that s is the cosine with the dequantised row); the `k` best vote with weights
softmax(s / tau) for their class (1 = a jailbreak witness view, 0 = "none"), and the vote is multiplied by
(0.99 + 0.01 * best s), so unanimous votes are ranked by closeness (modelbuild/safety_memory.py `vote_from`).
`vote` is the same computation in numpy (tests, parity). Measured: benchmarks/RESULTS.md "Tenth session
(`safety12`)".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from modelbuild.category_memory import MemoryVote, _dynamic_quantize

DIM = 384
OPSET = 17


def unit_rows(x: np.ndarray, proj: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """float32 [R,D]: the first 384 columns of `x` [R,>=384] scaled to unit length; with `proj` (mean [384],
    components [384,D]) then centred, projected and scaled to unit length again."""
    x = np.asarray(x[:, :DIM], np.float32)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), np.float32(1e-12))
    if proj is not None:
        x = (x - proj[0]) @ proj[1]
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), np.float32(1e-12))
    return x.astype(np.float32)


def pca(x: np.ndarray, dims: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean float32 [384], components float32 [384,dims]) of the unit rows of `x` [N,>=384]."""
    u = unit_rows(x)
    mu = u.mean(0)
    _, _, vt = np.linalg.svd(u[:: max(1, len(u) // 40000)] - mu, full_matrices=False)
    return mu.astype(np.float32), np.ascontiguousarray(vt[:dims].T).astype(np.float32)


def vote(mem: MemoryVote, x: np.ndarray, chunk: int = 1024,
         proj: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """float32 [R]: the jailbreak vote of each row of `x` [R,>=384] (labels 1 = jailbreak), as the graph computes
    it, except that each row is quantised on its own (the graph quantises a whole run's rows as one tensor).
    `proj`: the memory's rows were stored projected (`unit_rows(x, proj)`)."""
    q = unit_rows(x, proj)
    codes_t = mem.codes_t().astype(np.float32)
    out = np.zeros(len(q), np.float32)
    for i in range(0, len(q), chunk):
        qs, scale, zp = _dynamic_quantize(q[i : i + chunk] * mem.step)
        s = ((qs.astype(np.float32) - zp) @ codes_t) * scale + q[i : i + chunk] @ mem.lo[:, None]
        idx = np.argpartition(-s, mem.k - 1, axis=1)[:, : mem.k]
        top = np.take_along_axis(s, idx, 1)
        o = np.argsort(-top, axis=1, kind="stable")
        top, idx = np.take_along_axis(top, o, 1), np.take_along_axis(idx, o, 1)
        w = np.exp((top - top[:, :1]) / mem.tau)
        w /= w.sum(1, keepdims=True)
        out[i : i + chunk] = (w * (mem.labels[idx] == 1)).sum(1) * (0.99 + 0.01 * top[:, 0])
    return out


def export(mem: MemoryVote, path: Path, width: int = DIM + 4,
           proj: tuple[np.ndarray, np.ndarray] | None = None) -> None:
    """Write the ONNX model of `mem` (labels 0/1; rows stored as `unit_rows(x, proj)`) to `path`:
    `embedding` [R,width] -> `probs` [R,1]."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    table = ((np.arange(256, dtype=np.uint8)[:, None] >> np.array([0, 2, 4, 6], np.uint8)) & 3).astype(np.uint8)
    d = mem.codes.shape[1] * 4
    assert d == (DIM if proj is None else proj[1].shape[1]), f"memory of {d} dimensions"
    c = numpy_helper.from_array
    inits = [
        c(mem.codes, "codes"),  # uint8 [N, D/4], four 2-bit codes a byte
        c(table, "table"),
        c(np.array([mem.n_rows, d], np.int64), "shape"),
        c(mem.step, "step"),
        c(mem.lo[:, None].astype(np.float32), "lo"),  # [D,1]
        c(mem.labels.astype(np.uint8), "labels_u8"),  # [N] 1 = jailbreak witness
        c(np.array([mem.k], np.int64), "k"),
        c(np.array([1.0 / mem.tau], np.float32), "inv_tau"),
        c(np.array([0], np.int64), "zero"), c(np.array([1], np.int64), "one"), c(np.array([DIM], np.int64), "dim"),
        c(np.array([1e-12], np.float32), "tiny"), c(np.array([0.01], np.float32), "tie"),
        c(np.array([0.99], np.float32), "base"),
    ]
    n = helper.make_node
    nodes = [
        # constant: folded when the session loads (codes unpacked to uint8 [D,N])
        n("Cast", ["codes"], ["codes_i"], to=TensorProto.INT32),
        n("Gather", ["table", "codes_i"], ["q3"]),
        n("Reshape", ["q3", "shape"], ["q"]),
        n("Transpose", ["q"], ["codes_t"], perm=[1, 0]),
        n("Cast", ["labels_u8"], ["labels"], to=TensorProto.FLOAT),
        # per run: unit rows [R,D]
        n("Slice", ["embedding", "zero", "dim", "one"], ["x"]),
        n("ReduceL2", ["x"], ["norm"], axes=[1], keepdims=1),
        n("Max", ["norm", "tiny"], ["norm_c"]),
        n("Div", ["x", "norm_c"], ["u0"] if proj is not None else ["u"]),
        # scores = q . lo + scale * (quantised(u * step) - zero point) . codes  (cosine with the dequantised rows)
        n("Mul", ["u", "step"], ["us"]),
        n("DynamicQuantizeLinear", ["us"], ["u8", "u_scale", "u_zp"]),
        n("MatMulInteger", ["u8", "codes_t", "u_zp"], ["dot_i"]),
        n("Cast", ["dot_i"], ["dot"], to=TensorProto.FLOAT),
        n("Mul", ["dot", "u_scale"], ["dot_s"]),
        n("MatMul", ["u", "lo"], ["offset"]),  # [R,1]
        n("Add", ["dot_s", "offset"], ["scores"]),
        n("TopK", ["scores", "k"], ["top", "idx"], axis=-1, largest=1, sorted=1),
        n("Mul", ["top", "inv_tau"], ["top_t"]),
        n("Softmax", ["top_t"], ["w"], axis=-1),
        n("Gather", ["labels", "idx"], ["cls"]),  # [R,k]
        n("Mul", ["w", "cls"], ["wc"]),
        n("ReduceSum", ["wc", "one"], ["v"], keepdims=1),  # [R,1]
        n("Slice", ["top", "zero", "one", "one"], ["best"]),  # [R,1]
        n("Mul", ["best", "tie"], ["best_t"]),
        n("Add", ["best_t", "base"], ["factor"]),
        n("Mul", ["v", "factor"], ["probs"]),
    ]
    if proj is not None:  # centred, projected, unit length again
        inits += [c(proj[0].astype(np.float32), "mean"), c(proj[1].astype(np.float32), "components")]
        nodes[9:9] = [n("Sub", ["u0", "mean"], ["uc"]), n("MatMul", ["uc", "components"], ["up"]),
                      n("ReduceL2", ["up"], ["pnorm"], axes=[1], keepdims=1), n("Max", ["pnorm", "tiny"], ["pnorm_c"]),
                      n("Div", ["up", "pnorm_c"], ["u"])]
    graph = helper.make_graph(
        nodes, "jailbreak_memory",
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["rows", width])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["rows", 1])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
