"""An exemplar memory for the category head: the k nearest labelled training rows by cosine, as a vote.

The memory holds the sentence embeddings [N,384] of the head's training rows (never their text; rows whose
label none of their neighbours share are left out: `edit_rows`), each
dimension quantised to 2 bits (4 levels between that dimension's 1st and 99th percentile), four codes a byte:
12,630 rows are 1.2 MB. For a query embedding q (unit length) the scores are s = q . m_hat over the
dequantised rows m_hat, up to a constant per query, computed as an integer product: (q * step) quantised to
uint8 (DynamicQuantizeLinear) times the codes (MatMulInteger: 4.8 MB of uint8 read per request, ~0.1-0.2 ms
on one core here, where a float32 matrix read ~0.8-1.7 ms); the `k` best rows vote for their category with weights softmax(s_top / tau), so

    p_knn = sum_j w_j * onehot(category_j),   and the head adds   gamma * log((1 - eps) * p_knn + eps / 14)

to its mix of log-probabilities (modelbuild/category_fit.py). `MemoryVote.probs` computes p_knn in numpy;
`memory_graph` builds the same computation as ONNX nodes on the head's `embedding` input (unpacking the codes
is constant and folded by onnxruntime when the session loads: per request only the product and the top k). Measured in benchmarks/RESULTS.md ("Seventh session (`route8`)").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EPS = 0.02  # share of the vote spread over every category, so log(p_knn) stays finite


@dataclass(frozen=True)
class MemoryVote:
    codes: np.ndarray  # uint8 [N, D/4]: four 2-bit codes a byte, dimension 4*b + j in bits 2j..2j+1 of byte b
    lo: np.ndarray  # float32 [D]: value of code 0 per dimension
    step: np.ndarray  # float32 [D]: value difference between adjacent codes
    labels: np.ndarray  # int64 [N]: category index of each row
    n_classes: int
    k: int = 20
    tau: float = 0.05

    @classmethod
    def build(cls, x: np.ndarray, labels: np.ndarray, n_classes: int, k: int = 20, tau: float = 0.05) -> MemoryVote:
        """Quantise the rows `x` [N,D] (D divisible by 4) with their category indices `labels` [N]."""
        x = np.asarray(x, np.float32)
        lo = np.percentile(x, 1, axis=0).astype(np.float32)
        hi = np.percentile(x, 99, axis=0).astype(np.float32)
        step = np.maximum((hi - lo) / 3.0, 1e-6).astype(np.float32)
        q = np.clip(np.round((x - lo) / step), 0, 3).astype(np.uint8)  # [N,D]
        q4 = q.reshape(len(x), -1, 4)
        codes = (q4[:, :, 0] | (q4[:, :, 1] << 2) | (q4[:, :, 2] << 4) | (q4[:, :, 3] << 6)).astype(np.uint8)
        return cls(codes, lo, step, np.asarray(labels, np.int64), n_classes, k, tau)

    @property
    def n_rows(self) -> int:
        return int(self.codes.shape[0])

    def matrix(self) -> np.ndarray:
        """The dequantised rows [N,D] float32."""
        q = (self.codes[:, :, None] >> np.array([0, 2, 4, 6], np.uint8)) & 3
        return (q.reshape(self.n_rows, -1).astype(np.float32) * self.step + self.lo).astype(np.float32)

    def codes_t(self) -> np.ndarray:
        """The codes unpacked [D,N] uint8 (values 0..3)."""
        q = (self.codes[:, :, None] >> np.array([0, 2, 4, 6], np.uint8)) & 3
        return np.ascontiguousarray(q.reshape(self.n_rows, -1).T)

    def scores(self, x: np.ndarray, exclude: np.ndarray | None = None) -> np.ndarray:
        """[B,N] scores of queries `x` [B,D]: q . m_hat up to a constant per query (q . lo, which changes neither
        the top k nor their softmax), computed as the graph does: q * step quantised to uint8 per query batch
        (ONNX DynamicQuantizeLinear), an integer product with the codes, times the quantisation scale.
        `exclude` [B,N] bool marks rows a query may not see (the validation rows' own near-duplicate groups)."""
        q, scale, zp = _dynamic_quantize(np.asarray(x, np.float32) * self.step)
        # (q - zp) . codes in float32 is exact: |sum| <= 384 * 255 * 3 < 2**24
        out = ((q.astype(np.float32) - zp) @ self.codes_t().astype(np.float32)) * scale
        if exclude is not None:
            out = np.where(exclude, np.float32(-1e9), out)
        return out

    def probs(self, x: np.ndarray, exclude: np.ndarray | None = None) -> np.ndarray:
        """The vote p_knn [B, n_classes] of the `k` best-scoring rows."""
        s = self.scores(x, exclude)
        idx = np.argsort(-s, axis=1, kind="stable")[:, : self.k]
        top = np.take_along_axis(s, idx, 1)
        w = np.exp((top - top.max(1, keepdims=True)) / self.tau)
        w /= w.sum(1, keepdims=True)
        p = np.zeros((len(s), self.n_classes), np.float64)
        np.add.at(p, (np.repeat(np.arange(len(s)), self.k), self.labels[idx].ravel()), w.ravel())
        return p

    def log_term(self, x: np.ndarray, exclude: np.ndarray | None = None) -> np.ndarray:
        """log((1 - EPS) * p_knn + EPS / n_classes) [B, n_classes]: what the head mixes in (times gamma)."""
        return np.log((1.0 - EPS) * self.probs(x, exclude) + EPS / self.n_classes)


def edit_rows(x: np.ndarray, labels: np.ndarray, groups: np.ndarray, k: int = 20, tau: float = 0.05,
              margin: float = 0.5, chunk: int = 1000) -> np.ndarray:
    """Which rows to keep in the memory [N] bool (Wilson editing against label noise): a row stays when, voted on
    by its `k` nearest other rows outside its own near-duplicate group (`groups` [N], as at validation; softmax
    weights at `tau`), its own category gets at least `margin` of the winning category's vote. A question that
    its source labels unlike every neighbour (e.g. a plain quadratic equation filed under chemistry) would
    otherwise outvote the rest whenever a request is a near copy of it. Scores on the unquantised `x` [N,D]."""
    x = np.asarray(x, np.float32)
    labels = np.asarray(labels, np.int64)
    n_classes = int(labels.max()) + 1
    keep = np.ones(len(x), bool)
    for i in range(0, len(x), chunk):
        idx = np.arange(i, min(i + chunk, len(x)))
        s = x[idx] @ x.T
        s[groups[idx][:, None] == groups[None, :]] = -2.0  # itself and its near duplicates
        nn = np.argsort(-s, axis=1, kind="stable")[:, :k]
        top = np.take_along_axis(s, nn, 1)
        w = np.exp((top - top.max(1, keepdims=True)) / tau)
        w /= w.sum(1, keepdims=True)
        vote = np.zeros((len(idx), n_classes))
        np.add.at(vote, (np.repeat(np.arange(len(idx)), k), labels[nn].ravel()), w.ravel())
        keep[idx] = vote[np.arange(len(idx)), labels[idx]] >= margin * vote.max(1)
    return keep


def _dynamic_quantize(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ONNX DynamicQuantizeLinear of each row of `x` [B,D] on its own (the router's head runs one request per
    call at concurrency 1; a micro-batch is quantised as one tensor there): codes [B,D], scale and zero point
    [B,1], float32 arithmetic and round-half-to-even as the operator."""
    lo = np.minimum(np.float32(0.0), x.min(1, keepdims=True))
    hi = np.maximum(np.float32(0.0), x.max(1, keepdims=True))
    scale = ((hi - lo) / np.float32(255.0)).astype(np.float32)
    scale = np.where(scale > 0, scale, np.float32(1.0)).astype(np.float32)
    zp = np.clip(np.rint(-lo / scale), 0, 255).astype(np.float32)
    q = np.clip(np.rint(x / scale) + zp, 0, 255).astype(np.uint8)
    return q, scale, zp


def memory_graph(mem: MemoryVote, prefix: str = "mem_"):  # type: ignore[no-untyped-def]
    """ONNX nodes + initializers: `embedding` [B,D] -> `{prefix}logp` [B,K] = `MemoryVote.log_term`."""
    from onnx import TensorProto, helper, numpy_helper

    p = prefix
    table = ((np.arange(256, dtype=np.uint8)[:, None] >> np.array([0, 2, 4, 6], np.uint8)) & 3).astype(np.uint8)
    d = mem.codes.shape[1] * 4
    inits = [
        numpy_helper.from_array(mem.codes, p + "codes"),  # uint8 [N, D/4]
        numpy_helper.from_array(table, p + "table"),  # uint8 [256,4]: the four codes of each byte value
        numpy_helper.from_array(np.array([mem.n_rows, d], np.int64), p + "shape"),
        numpy_helper.from_array(mem.step, p + "step"),
        numpy_helper.from_array(mem.labels.astype(np.uint8), p + "labels_u8"),
        numpy_helper.from_array(np.eye(mem.n_classes, dtype=np.float32), p + "eye"),
        numpy_helper.from_array(np.array([mem.k], np.int64), p + "k"),
        numpy_helper.from_array(np.array([1.0 / mem.tau], np.float32), p + "inv_tau"),
        numpy_helper.from_array(np.array([1.0 - EPS], np.float32), p + "keep"),
        numpy_helper.from_array(np.array([EPS / mem.n_classes], np.float32), p + "spread"),
        numpy_helper.from_array(np.array([1], np.int64), p + "axis1"),
    ]
    n = helper.make_node
    nodes = [
        # constant: folded when the session loads (the codes unpacked to uint8 [D,N], 4.8 MB for 12.6k rows)
        n("Cast", [p + "codes"], [p + "codes_i"], to=TensorProto.INT32),
        n("Gather", [p + "table", p + "codes_i"], [p + "q3"]),  # [N, D/4, 4]
        n("Reshape", [p + "q3", p + "shape"], [p + "q"]),  # [N, D]
        n("Transpose", [p + "q"], [p + "codes_t"], perm=[1, 0]),  # [D, N]
        n("Cast", [p + "labels_u8"], [p + "labels"], to=TensorProto.INT64),
        # per request: scores = scale * (quantised(q * step) - zero point) . codes
        n("Mul", ["embedding", p + "step"], [p + "qs"]),
        n("DynamicQuantizeLinear", [p + "qs"], [p + "q_u8", p + "q_scale", p + "q_zp"]),
        n("MatMulInteger", [p + "q_u8", p + "codes_t", p + "q_zp"], [p + "dot_i"]),  # [B, N] int32
        n("Cast", [p + "dot_i"], [p + "dot"], to=TensorProto.FLOAT),
        n("Mul", [p + "dot", p + "q_scale"], [p + "scores"]),
        n("TopK", [p + "scores", p + "k"], [p + "top", p + "idx"], axis=-1, largest=1, sorted=1),
        n("Mul", [p + "top", p + "inv_tau"], [p + "top_t"]),
        n("Softmax", [p + "top_t"], [p + "w"], axis=-1),  # [B, k]
        n("Gather", [p + "labels", p + "idx"], [p + "cats"]),  # [B, k]
        n("Gather", [p + "eye", p + "cats"], [p + "onehot"]),  # [B, k, K]
        n("Unsqueeze", [p + "w", p + "axis1"], [p + "w_row"]),  # [B, 1, k]
        n("MatMul", [p + "w_row", p + "onehot"], [p + "vote3"]),  # [B, 1, K]
        n("Squeeze", [p + "vote3", p + "axis1"], [p + "vote"]),
        n("Mul", [p + "vote", p + "keep"], [p + "vote_keep"]),
        n("Add", [p + "vote_keep", p + "spread"], [p + "vote_eps"]),
        n("Log", [p + "vote_eps"], [p + "logp"]),
    ]
    return nodes, inits
