"""Safety scores (jailbreak, prompt injection, harmful request) over the WHOLE prompt, max-pooled over windows.

A sentence embedding averages the whole prompt, so one attack sentence after a few ordinary ones, or an
instruction hidden in a pasted document, is diluted away. The safety head therefore scores many views
of one prompt and keeps, per label, the highest score:

- every encoder row's mean of token states (the prompt's sentence embedding for the main row),
- overlapping windows of those token states (`WindowSpec`: e.g. 32 tokens every 16, 128 every 64),
- for prompts longer than the encoder's token budget, the middle part that head+tail truncation drops
  (tokenize.py) is encoded in extra rows (`overflow_rows`), up to `max_chunks` of them, and scored the
  same way. `SafetyScores.coverage` says which share of the prompt's tokens were seen.

The windows reuse the token states of the encoder run that the other signals share, so a prompt within
the token budget costs no extra encoder run, only a few more rows through the small head. The head
(`jailbreak_head.onnx`, built by modelbuild/train_jailbreak.py) maps a row [D] to independent
per-label probabilities (sigmoid); its labels file names the labels and the window sizes it was trained
with, so training and runtime cannot disagree.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAFETY_LABELS = ("jailbreak", "injection", "harmful")


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """Windows of `size` content tokens every `stride` tokens (rows shorter than `size` get none)."""

    size: int
    stride: int


DEFAULT_WINDOWS = (WindowSpec(32, 16), WindowSpec(128, 64))


def read_head_meta(path: Path) -> tuple[tuple[str, ...], tuple[WindowSpec, ...]]:
    """(labels, window specs) from a `jailbreak_head.labels.json`; raises ValueError on another format."""
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or data.get("output") != "sigmoid" or "windows" not in data:
        raise ValueError(f"{path}: not a windowed safety head (expected output=sigmoid and windows); "
                         "run `make models`")
    labels = tuple(str(x) for x in data["labels"])
    unknown = set(labels) - set(SAFETY_LABELS)
    if unknown:
        raise ValueError(f"{path}: unknown safety labels {sorted(unknown)}")
    return labels, tuple(WindowSpec(int(s), int(t)) for s, t in data["windows"])


def window_rows(states: np.ndarray, length: int, specs: Sequence[WindowSpec] = DEFAULT_WINDOWS) -> np.ndarray:
    """Views of ONE encoder row: `states` float [T,D] token states, `length` real tokens ([CLS] and [SEP]
    included). Returns float32 [W,D], L2-normalised: row 0 is the mean over all `length` tokens (for the
    main row: the sentence embedding, up to int8 noise), then each window's mean over content tokens."""
    x = states[:length].astype(np.float32, copy=False)
    rows = [x.mean(axis=0)]
    n = length - 2  # content tokens, between [CLS] and [SEP]
    if n > 0:
        csum = np.concatenate([np.zeros((1, x.shape[1]), np.float32), np.cumsum(x[1 : 1 + n], axis=0)])
        for spec in specs:
            if n <= spec.size:
                continue
            starts = list(range(0, n - spec.size + 1, spec.stride))
            if starts[-1] != n - spec.size:
                starts.append(n - spec.size)  # the last window ends at the last content token
            s = np.array(starts)
            rows.extend((csum[s + spec.size] - csum[s]) / spec.size)
    out = np.stack(rows)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def overflow_rows(ids: Sequence[int], max_tokens: int, max_chunks: int, overlap: int = 32,
                  cls_id: int = 101, sep_id: int = 102) -> tuple[list[list[int]], int]:
    """Encoder rows for the content tokens `ids` that head+tail truncation to `max_tokens` drops.

    Returns (rows with [CLS]/[SEP], middle tokens left unseen). Chunks of max_tokens-2 tokens start
    `overlap` tokens inside the kept head and step by (max_tokens-2-overlap), so an instruction that
    straddles a boundary is whole in one of them; at most `max_chunks` rows (the rest is reported unseen).
    """
    budget = max_tokens - 2
    if len(ids) <= budget:
        return [], 0
    head = (budget + 1) // 2
    tail = budget - head
    lo, hi = max(0, head - overlap), min(len(ids), len(ids) - tail + overlap)
    step = max(1, budget - overlap)
    rows: list[list[int]] = []
    pos = lo
    while pos < hi - overlap and len(rows) < max_chunks:
        end = min(pos + budget, hi)
        rows.append([cls_id, *ids[pos:end], sep_id])
        pos += step
    seen_to = min(hi, pos - step + budget) if rows else lo
    return rows, max(0, (len(ids) - tail) - max(seen_to, head))


def pad_rows(rows: Sequence[Sequence[int]], pad_id: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """int64 (input_ids, attention_mask) [R,T] for token rows of different lengths."""
    width = max(len(r) for r in rows)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = r
        mask[i, : len(r)] = 1
    return ids, mask


@dataclass(frozen=True, slots=True)
class SafetyScores:
    """Per-label probabilities of one prompt (max over its windows) and the share of its tokens scored."""

    scores: dict[str, float]
    coverage: float = 1.0


class SafetyViews:
    """Builds the rows the safety head scores for a batch of prompts, from the shared encoder run.

    `tokenizer` is the analyzer's TextTokenizer, `encode(ids, mask) -> token states [R,T,D]` runs the
    encoder for the extra overflow rows. Used by the analyzer at request time and by the training script,
    so both see the same views."""

    def __init__(self, tokenizer, encode, specs: Sequence[WindowSpec], max_chunks: int) -> None:  # type: ignore[no-untyped-def]
        self.tokenizer, self.encode = tokenizer, encode
        self.specs, self.max_chunks = tuple(specs), max_chunks

    def rows(self, texts: Sequence[str], states: np.ndarray, lengths: Sequence[int],
             truncated: Sequence[bool]) -> tuple[list[np.ndarray], list[float]]:
        """Per text: its views float32 [W_i,D] and the share of its tokens they cover (0..1).
        `states` [B,T,D] and `lengths` come from the main (head+tail) encoder run of `texts`."""
        views = [window_rows(states[i], lengths[i], self.specs) for i in range(len(texts))]
        coverage = [1.0] * len(texts)
        long = [i for i, cut in enumerate(truncated) if cut]
        if not long or self.max_chunks <= 0:
            for i in long:
                coverage[i] = (lengths[i] - 2) / max(1, len(self.tokenizer.content_ids([texts[i]])[0]))
            return views, coverage
        extra: list[list[int]] = []
        owner: list[int] = []
        for i, ids in zip(long, self.tokenizer.content_ids([texts[i] for i in long]), strict=True):
            rows, unseen = overflow_rows(ids, self.tokenizer.max_tokens, self.max_chunks,
                                         cls_id=self.tokenizer.cls_id, sep_id=self.tokenizer.sep_id)
            extra += rows
            owner += [i] * len(rows)
            coverage[i] = 1.0 - unseen / max(1, len(ids))
        if extra:
            ids_arr, mask = pad_rows(extra, self.tokenizer.pad_id)
            st = self.encode(ids_arr, mask)
            lens = mask.sum(axis=1)
            more: dict[int, list[np.ndarray]] = {}
            for r, i in enumerate(owner):
                more.setdefault(i, []).append(window_rows(st[r], int(lens[r]), self.specs))
            for i, parts in more.items():
                views[i] = np.concatenate([views[i], *parts])
        return views, coverage


class SafetyScorer:
    """The safety head over every view of each prompt: per label the max score, and the coverage.

    `head` is the loaded `jailbreak_head` (embedding [R,D] -> probs [R,len(labels)], sigmoid per label)."""

    def __init__(self, head, labels: Sequence[str], views: SafetyViews) -> None:  # type: ignore[no-untyped-def]
        self.head, self.labels, self.views = head, tuple(labels), views

    @classmethod
    def load(cls, head, labels_path: Path, tokenizer, encoder, max_chunks: int) -> SafetyScorer:  # type: ignore[no-untyped-def]
        """`encoder` is the analyzer's Encoder (its token states feed the overflow rows' views)."""
        labels, specs = read_head_meta(labels_path)

        def encode(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
            return encoder(ids, mask, tokens=True).tokens

        return cls(head, labels, SafetyViews(tokenizer, encode, specs, max_chunks))

    def __call__(self, texts: Sequence[str], states: np.ndarray, lengths: Sequence[int],
                 truncated: Sequence[bool]) -> list[SafetyScores]:
        """One SafetyScores per text; `states` [B,T,D], `lengths`, `truncated` from the shared encoder run."""
        views, coverage = self.views.rows(texts, states, lengths, truncated)
        probs = self.head(np.concatenate(views))
        out, at = [], 0
        for v, cov in zip(views, coverage, strict=True):
            top = probs[at : at + len(v)].max(axis=0)
            at += len(v)
            out.append(SafetyScores({lab: float(p) for lab, p in zip(self.labels, top, strict=True)}, cov))
        return out
