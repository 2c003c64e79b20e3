"""Cross-encoder hit verifier: P(same answer) from one model that reads both prompts at once.

`models/cache_verifier_cross.onnx` (built by `make models` from the LoRA adapters that
modelbuild/cache_verifier/cross/train.py trains on the verifier's mix) is MiniLM-L6 over
`[CLS] new prompt [SEP] cached prompt [SEP]` (token types 0 / 1) with a small head. Unlike the
bi-encoder verifier (learned_verify.py: two sentence vectors + lexical features) its attention sees
which words of one prompt have a counterpart in the other (an added scope word, a synonym), but as trained it
does not tell swapped arguments apart and serves some negations of unseen styles: keep the vetoes (the `order`
family refuses the same words in another order) and the bi-encoder guard (`cross_guard_threshold`)
(benchmarks/RESULTS.md, "Seventh session (`xenc`)" and "Eighth session (`cache9`)").

    inputs  input_ids, attention_mask, token_type_ids int64 [B,T]  ->  probs float32 [B,2]

The sidecar `cache_verifier_cross.labels.json` (next to the model) must say `"kind": "cross_encoder"`
and names the tokenizer and `max_len_served`: a pair longer than that many tokens gets score 0 (truncating
it could cut off the difference; training saw pairs of at most `max_len` tokens). A pair longer than `max_len`
whose prompts differ in one run of a few words only (`is_substitution`, `long_substitution_words`) also gets 0:
the model served such one-term swaps (PostgreSQL/MySQL, GET/POST) the more often the more shared context
surrounded them (benchmarks/RESULTS.md, ninth session `cache10`). One ONNX Runtime session,
one intra-op thread; `score` blocks (the fp32 model: p50 ~10 ms for one chat-length pair, ~17 ms for three,
on a loaded 2-core machine), so the cache calls it in a worker thread.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from semrouter.cache.equivalent import _one_edit
from semrouter.cache.learned_verify import VerifierModelError

KIND = "cross_encoder"


def differing_window(query: str, cached: str, context_words: int) -> tuple[str, str]:
    """The two prompts cut to where they differ: the words (split on whitespace) both share at the start and at the
    end are dropped, except `context_words` of each next to the difference. Prompts that differ near both ends (a
    politeness wrapper, a changed first and last word) come back whole."""
    a, b = query.split(), cached.split()
    n = min(len(a), len(b))
    pre = 0
    while pre < n and a[pre] == b[pre]:
        pre += 1
    suf = 0
    while suf < n - pre and a[len(a) - 1 - suf] == b[len(b) - 1 - suf]:
        suf += 1
    lo, cut = max(0, pre - context_words), max(0, suf - context_words)
    if lo == 0 and cut == 0:
        return query, cached
    return " ".join(a[lo:len(a) - cut]), " ".join(b[lo:len(b) - cut])


def is_substitution(query: str, cached: str, max_words: int) -> bool:
    """Whether the prompts differ in one run of 1..`max_words` words each, everything else equal, and not by one
    letter (a typo of one word: equivalent.py serves those): "... stored in PostgreSQL ..." vs "... in MySQL ..."."""
    x, y = differing_window(query, cached, 0)
    wx, wy = x.split(), y.split()
    if not (1 <= len(wx) <= max_words and 1 <= len(wy) <= max_words):
        return False
    if len(wx) == len(wy) == 1 and _one_edit(wx[0].lower().strip(_PUNCT), wy[0].lower().strip(_PUNCT)):
        return False
    return True


_PUNCT = ".,;:?!\"'()"


class PairTokenizer:
    """The encoder's tokenizer in pair mode: (firsts[i], seconds[i]) -> padded int64 [B,T] arrays.

    `[CLS] first [SEP] second [SEP]`, truncated longest-first to `max_len` tokens (training uses this class)."""

    def __init__(self, path: str | Path, max_len: int) -> None:
        from tokenizers import Tokenizer

        self.max_len = max_len
        self._tok = Tokenizer.from_file(str(path))
        self._tok.no_padding()
        self._tok.no_truncation()
        self._full = Tokenizer.from_file(str(path))
        self._full.no_padding()
        self._full.no_truncation()
        self._tok.enable_padding(pad_id=0, pad_token="[PAD]")
        self._tok.enable_truncation(max_len, strategy="longest_first")

    def __call__(self, firsts: Sequence[str], seconds: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(input_ids, attention_mask, token_type_ids), each int64 [B,T] with T <= max_len."""
        enc = self._tok.encode_batch(list(zip(firsts, seconds, strict=True)))
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        types = np.array([e.type_ids for e in enc], dtype=np.int64)
        return ids, mask, types

    def lengths(self, firsts: Sequence[str], seconds: Sequence[str]) -> np.ndarray:
        """Untruncated pair lengths in tokens, int [B]."""
        return np.array([len(e.ids) for e in self._full.encode_batch(list(zip(firsts, seconds, strict=True)))])


class CrossVerifier:
    """Scores (new prompt, cached prompt) pairs with the cross-encoder (onnxruntime, one intra-op thread)."""

    def __init__(self, model_path: str | Path, tokenizer_path: str | Path | None = None,
                 long_substitution_words: int = 0) -> None:
        """`tokenizer_path`: default the sidecar's `tokenizer` next to the model. `long_substitution_words`: a pair
        longer than the sidecar's training `max_len` tokens whose prompts differ in one run of at most this many
        words each (`is_substitution`) scores 0 without a run (0 = off). Raises VerifierModelError when the model,
        its sidecar or the tokenizer is missing, or the model is not a cross-encoder."""
        path = Path(model_path)
        if not path.is_file():
            raise VerifierModelError(f"cross-encoder verifier model not found: {path}")
        sidecar = path.with_name(path.name.removesuffix(".onnx") + ".labels.json")
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise VerifierModelError(f"{sidecar}: cannot read the cross-encoder's sidecar: {e}") from e
        if meta.get("kind") != KIND:
            raise VerifierModelError(f"{sidecar}: kind {meta.get('kind')!r} is not {KIND!r} (not a cross-encoder)")
        tok = Path(tokenizer_path) if tokenizer_path is not None else path.parent / str(meta.get("tokenizer", ""))
        if not tok.is_file():
            raise VerifierModelError(f"cross-encoder tokenizer not found: {tok}")
        import onnxruntime as ort

        from semrouter.signals.onnx.sessions import session_options

        try:
            self._sess = ort.InferenceSession(str(path), session_options(1), providers=["CPUExecutionProvider"])
        except Exception as e:
            raise VerifierModelError(f"cannot load cross-encoder verifier {path}: {e}") from e
        names = {i.name for i in self._sess.get_inputs()}
        if names != {"input_ids", "attention_mask", "token_type_ids"}:
            raise VerifierModelError(f"{path}: inputs {sorted(names)} != attention_mask, input_ids, token_type_ids")
        self.path = path
        self.max_len_served = int(meta.get("max_len_served", 256))
        self.max_len_trained = int(meta.get("max_len", 96))
        self.long_substitution_words = long_substitution_words
        self.thresholds: dict[str, float] = dict(meta.get("chosen_on_validation") or {})
        self._tok = PairTokenizer(tok, self.max_len_served)
        self.runs = 0  # ONNX runs so far (read by tests)

    def score(self, query: str, cached: Sequence[str]) -> np.ndarray:
        """P(same answer) of (query, cached[i]) for each i: float32 [len(cached)], one batched run (blocking).
        A pair longer than `max_len_served` tokens scores 0."""
        return self.score_pairs([query] * len(cached), cached)

    def score_pairs(self, news: Sequence[str], cached: Sequence[str]) -> np.ndarray:
        """P(same answer) of (news[i], cached[i]): float32 [B], one run over the pairs of at most
        `max_len_served` tokens (none when no pair fits; the others score 0). The benchmark scores many pairs."""
        out = np.zeros(len(cached), dtype=np.float32)
        if not cached:
            return out
        lengths = self._tok.lengths(list(news), list(cached))
        # pairs over max_len_served score 0 without a run: a batch of them cost a full max_len_served-token run
        # per pair (~120 ms for three on a loaded 2-core machine) for a known 0, and padded shorter pairs to it
        ok = lengths <= self.max_len_served
        if self.long_substitution_words:  # longer than trained on, and one term swapped: a 0 the model does not give
            ok &= np.array([n <= self.max_len_trained or not is_substitution(a, b, self.long_substitution_words)
                            for n, a, b in zip(lengths, news, cached, strict=True)])
        fits = np.flatnonzero(ok)
        if not len(fits):
            return out
        ids, mask, types = self._tok([news[i] for i in fits], [cached[i] for i in fits])
        (probs,) = self._sess.run(["probs"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
        self.runs += 1
        out[fits] = probs[:, 1].astype(np.float32)
        return out
