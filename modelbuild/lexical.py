"""A lexical (bag of word pieces) classifier that runs inside ONNX on the encoder's own `input_ids`.

Features of one text, over the router's tokenisation (special tokens never count):
unigrams (word-piece ids) and bigrams (adjacent id pairs) seen in at least `min_df` training texts.
Index 0 is "unknown" (idf 0, weight row 0). With idf_j the smoothed inverse document frequency, the
feature vector is

    x = sum over token occurrences o of idf[f(o)] * e[f(o)],  divided by sqrt(sum over o of idf[f(o)]^2)

(each occurrence counts on its own, so the graph needs no per-text counting). A multinomial logistic
regression on x gives `lex_logits = x @ W + b`. `features` computes x in numpy for training and
`lexical_graph` builds the same computation as ONNX nodes (Gather + ai.onnx.ml LabelEncoder for the
bigram lookup), so the exported head and the training code agree (checked by the caller).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

SPECIAL_IDS = (0, 100, 101, 102, 103)  # [PAD] [UNK] [CLS] [SEP] [MASK] in the MiniLM vocabulary


@dataclass(frozen=True)
class LexicalVocab:
    vocab_size: int  # of the tokenizer: bigram key = a * vocab_size + b
    unigram: np.ndarray  # int64 [vocab_size]: token id -> feature index (0 = unknown)
    bigram_keys: np.ndarray  # int64 [K], sorted
    bigram_index: np.ndarray  # int64 [K]: feature index of each key
    idf: np.ndarray  # float32 [n_features], idf[0] = 0

    @property
    def n_features(self) -> int:
        return int(self.idf.shape[0])

    @classmethod
    def build(cls, ids: np.ndarray, mask: np.ndarray, vocab_size: int, min_df: int = 3) -> LexicalVocab:
        n = ids.shape[0]
        uni_df: dict[int, int] = {}
        bi_df: dict[int, int] = {}
        for row in _rows(ids, mask):
            for t in set(row) - {-1}:
                uni_df[t] = uni_df.get(t, 0) + 1
            for k in set(_bigrams(row, vocab_size)):
                bi_df[k] = bi_df.get(k, 0) + 1
        uni = sorted(t for t, d in uni_df.items() if d >= min_df)
        bi = sorted(k for k, d in bi_df.items() if d >= min_df)
        unigram = np.zeros(vocab_size, np.int64)
        unigram[np.array(uni, np.int64)] = np.arange(1, len(uni) + 1)
        df = np.array([0] + [uni_df[t] for t in uni] + [bi_df[k] for k in bi], np.float64)
        idf = np.log((1 + n) / (1 + df)) + 1.0  # scikit-learn's smoothed idf
        idf[0] = 0.0
        return cls(
            vocab_size=vocab_size,
            unigram=unigram,
            bigram_keys=np.array(bi, np.int64),
            bigram_index=np.arange(len(uni) + 1, len(uni) + 1 + len(bi), dtype=np.int64),
            idf=idf.astype(np.float32),
        )

    def features(self, ids: np.ndarray, mask: np.ndarray) -> sp.csr_matrix:
        """x for each row of a padded batch (the same numbers as the ONNX graph, up to float rounding)."""
        lookup = dict(zip(self.bigram_keys.tolist(), self.bigram_index.tolist(), strict=True))
        data: list[float] = []
        cols: list[int] = []
        indptr = [0]
        for row in _rows(ids, mask):
            f = [int(self.unigram[t]) if t >= 0 else 0 for t in row] + [lookup.get(k, 0) for k in _bigrams(row, self.vocab_size)]
            w = self.idf[np.array(f, np.int64)] if f else np.zeros(0, np.float32)
            norm = float(np.sqrt(np.sum(w.astype(np.float64) ** 2))) or 1.0
            for j, v in zip(f, w, strict=True):
                if j:
                    cols.append(j)
                    data.append(float(v) / norm)
            indptr.append(len(cols))
        x = sp.csr_matrix((data, cols, indptr), shape=(ids.shape[0], self.n_features), dtype=np.float64)
        x.sum_duplicates()
        return x


def _rows(ids: np.ndarray, mask: np.ndarray) -> list[list[int]]:
    """Per row: the token ids under the mask, special tokens removed (adjacency across them is broken)."""
    special = set(SPECIAL_IDS)
    return [
        [int(t) if int(t) not in special else -1 for t, k in zip(r, m, strict=True) if k]
        for r, m in zip(ids, mask, strict=True)
    ]


def _bigrams(row: list[int], vocab_size: int) -> list[int]:
    return [a * vocab_size + b for a, b in zip(row, row[1:]) if a >= 0 and b >= 0]


def lexical_graph(vocab: LexicalVocab, weight: np.ndarray, bias: np.ndarray, prefix: str = "lex_"):  # type: ignore[no-untyped-def]
    """ONNX nodes + initializers: (`input_ids`, `attention_mask`) -> `{prefix}logits` [B,K] float32.

    Mirrors `LexicalVocab.features` followed by `x @ weight + bias`; weight [n_features, K] with row 0
    zero. Special tokens map to feature 0 (idf 0) and bigrams touching them are not in the table."""
    from onnx import TensorProto, helper, numpy_helper

    p = prefix
    w = np.asarray(weight, np.float32).copy()
    w[0] = 0.0
    inits = [
        # lookup tables stored narrow and widened by a Cast that onnxruntime folds at load (same numbers)
        numpy_helper.from_array(vocab.unigram.astype(np.uint16 if vocab.n_features < 1 << 16 else np.int32),
                                p + "unigram_narrow"),
        numpy_helper.from_array(vocab.idf.astype(np.float32), p + "idf"),
        numpy_helper.from_array(w, p + "weight"),
        numpy_helper.from_array(np.asarray(bias, np.float32), p + "bias"),
        numpy_helper.from_array(np.array([vocab.vocab_size], np.int64), p + "vocab"),
        numpy_helper.from_array(np.array([0], np.int64), p + "zero"),
        numpy_helper.from_array(np.array([1], np.int64), p + "one"),
        numpy_helper.from_array(np.array([-1], np.int64), p + "minus_one"),
        numpy_helper.from_array(np.array([1 << 62], np.int64), p + "end"),
        numpy_helper.from_array(np.array([1], np.int64), p + "axis1"),
        numpy_helper.from_array(np.array([1e-12], np.float32), p + "eps"),
    ]
    special = np.zeros(vocab.vocab_size, np.int64)
    special[list(SPECIAL_IDS)] = 1
    inits.append(numpy_helper.from_array(special.astype(np.uint8), p + "special_u8"))
    n = helper.make_node
    nodes = [
        n("Cast", [p + "unigram_narrow"], [p + "unigram"], to=TensorProto.INT64),
        n("Cast", [p + "special_u8"], [p + "special"], to=TensorProto.INT64),
        # ids of special tokens are "not a token": masked out, and they break bigrams
        n("Gather", [p + "special", "input_ids"], [p + "is_special"]),
        n("Sub", [p + "one", p + "is_special"], [p + "not_special"]),
        n("Mul", ["attention_mask", p + "not_special"], [p + "m_uni"]),
        n("Gather", [p + "unigram", "input_ids"], [p + "f_uni"]),
        n("Slice", ["input_ids", p + "zero", p + "minus_one", p + "axis1"], [p + "left"]),
        n("Slice", ["input_ids", p + "one", p + "end", p + "axis1"], [p + "right"]),
        n("Slice", [p + "m_uni", p + "zero", p + "minus_one", p + "axis1"], [p + "m_left"]),
        n("Slice", [p + "m_uni", p + "one", p + "end", p + "axis1"], [p + "m_right"]),
        n("Mul", [p + "m_left", p + "m_right"], [p + "m_bi"]),
        n("Mul", [p + "left", p + "vocab"], [p + "left_scaled"]),
        n("Add", [p + "left_scaled", p + "right"], [p + "bi_key"]),
        n(
            "LabelEncoder", [p + "bi_key"], [p + "f_bi"], domain="ai.onnx.ml",
            keys_int64s=vocab.bigram_keys.tolist(), values_int64s=vocab.bigram_index.tolist(), default_int64=0,
        ),
        n("Concat", [p + "f_uni", p + "f_bi"], [p + "f"], axis=1),
        n("Concat", [p + "m_uni", p + "m_bi"], [p + "m_int"], axis=1),
        n("Cast", [p + "m_int"], [p + "m"], to=TensorProto.FLOAT),
        n("Gather", [p + "idf", p + "f"], [p + "idf_f"]),
        n("Mul", [p + "idf_f", p + "m"], [p + "w"]),  # [B,L]
        n("Mul", [p + "w", p + "w"], [p + "w2"]),
        n("ReduceSum", [p + "w2", p + "axis1"], [p + "sq"], keepdims=1),  # [B,1]
        n("Add", [p + "sq", p + "eps"], [p + "sq_eps"]),
        n("Sqrt", [p + "sq_eps"], [p + "norm"]),
        n("Gather", [p + "weight", p + "f"], [p + "rows"]),  # [B,L,K]
        n("Unsqueeze", [p + "w", p + "axis1"], [p + "w_row"]),  # [B,1,L]
        n("MatMul", [p + "w_row", p + "rows"], [p + "sum3"]),  # [B,1,K]
        n("Squeeze", [p + "sum3", p + "axis1"], [p + "sum"]),
        n("Div", [p + "sum", p + "norm"], [p + "x_w"]),
        n("Add", [p + "x_w", p + "bias"], [p + "logits"]),
    ]
    return nodes, inits
