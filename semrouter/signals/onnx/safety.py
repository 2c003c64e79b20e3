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
with, so training and runtime cannot disagree. A head whose labels file lists `lexical_labels` also reads
each view's word-piece ids (a bag-of-word-pieces regression inside the same ONNX file, modelbuild/
safety_lexical.py); for those labels the prompt's score fuses both branches' maxima (`fuse_logits`).
A head whose labels file sets `segments` (a budget in encoder rows, e.g. 16) also scores the prompt's sentences
and adjacent sentence pairs, each encoded ALONE in one or two extra encoder runs (segments.py: every sentence,
pairs chosen by the sentences' scores when not all fit; `SafetyViews.segment_rows`):
the windows above see an attack sentence through the prefix's context, a segment does not, so a short attack
that is refused alone is refused after any ordinary prefix. Prompts of one sentence pay nothing for it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semrouter.signals.onnx.segments import (ExtraPlan, choose_pairs, default_read_rows, extra_budget, plan_extra,
                                             plan_segments, spare_budget)

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


def window_spans(n: int, specs: Sequence[WindowSpec] = DEFAULT_WINDOWS) -> list[tuple[int, int]]:
    """The views of a row with `n` content tokens, as content-token spans [start, end): first the whole row
    (0, n), then each spec's windows in order (a spec whose size is >= n adds none)."""
    spans = [(0, max(n, 0))]
    for spec in specs:
        if n <= spec.size:
            continue
        starts = list(range(0, n - spec.size + 1, spec.stride))
        if starts[-1] != n - spec.size:
            starts.append(n - spec.size)  # the last window ends at the last content token
        spans.extend((a, a + spec.size) for a in starts)
    return spans


def position_features(spans: Sequence[tuple[int, int, int]], total: int) -> np.ndarray:
    """float32 [W,4] per view (start, end, tokens): its share of the prompt's tokens, the share before it, after it, and
    log(1 + prompt tokens) / log(4096). An instruction that is a small part in the middle of a long prompt
    (pasted content) reads differently from one that IS the prompt."""
    t = float(max(total, 1))
    f = np.array([(k / t, a / t, (total - b) / t, np.log1p(total) / np.log(4096.0)) for a, b, k in spans],
                 dtype=np.float32)
    return np.clip(f, 0.0, 1.0)


def window_rows(states: np.ndarray, length: int, specs: Sequence[WindowSpec] = DEFAULT_WINDOWS) -> np.ndarray:
    """Views of ONE encoder row: `states` float [T,D] token states, `length` real tokens ([CLS] and [SEP]
    included). Returns float32 [W,D], L2-normalised: row 0 is the mean over all `length` tokens (for the
    main row: the sentence embedding, up to int8 noise), then each window's mean over content tokens."""
    x = states[:length].astype(np.float32, copy=False)
    rows = [x.mean(axis=0)]
    spans = window_spans(length - 2, specs)[1:]  # content tokens sit between [CLS] and [SEP]
    if spans:
        csum = np.concatenate([np.zeros((1, x.shape[1]), np.float32), np.cumsum(x[1 : length - 1], axis=0)])
        a = np.array([sp[0] for sp in spans])
        b = np.array([sp[1] for sp in spans])
        rows.extend((csum[b] - csum[a]) / (b - a)[:, None])
    out = np.stack(rows)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def view_token_rows(content: Sequence[int], specs: Sequence[WindowSpec] = DEFAULT_WINDOWS) -> list[Sequence[int]]:
    """The content-token ids of each view of one encoder row (`content`: its ids without [CLS]/[SEP]), in the
    order `window_rows` builds them: the whole row, then each spec's windows. For the lexical branch."""
    return [content[a:b] for a, b in window_spans(len(content), specs)]


def overflow_rows(ids: Sequence[int], max_tokens: int, max_chunks: int, overlap: int = 32,
                  cls_id: int = 101, sep_id: int = 102) -> tuple[list[list[int]], int]:
    """Encoder rows for the content tokens `ids` that head+tail truncation to `max_tokens` drops.

    Returns (rows with [CLS]/[SEP], middle tokens left unseen). Chunks of max_tokens-2 tokens start
    `overlap` tokens inside the kept head and step by (max_tokens-2-overlap), so an instruction that
    straddles a boundary is whole in one of them; at most `max_chunks` rows (the rest is reported unseen).
    """
    starts, unseen = overflow_starts(len(ids), max_tokens, max_chunks, overlap)
    budget = max_tokens - 2
    hi = min(len(ids), len(ids) - (budget - (budget + 1) // 2) + overlap)
    return [[cls_id, *ids[a : min(a + budget, hi)], sep_id] for a in starts], unseen


def overflow_starts(n: int, max_tokens: int, max_chunks: int, overlap: int = 32) -> tuple[list[int], int]:
    """(start of each overflow row in content tokens, tokens left unseen) for a prompt of `n` content tokens."""
    budget = max_tokens - 2
    if n <= budget:
        return [], 0
    head = (budget + 1) // 2
    tail = budget - head
    lo, hi = max(0, head - overlap), min(n, n - tail + overlap)
    step = max(1, budget - overlap)
    starts: list[int] = []
    pos = lo
    while pos < hi - overlap and len(starts) < max_chunks:
        starts.append(pos)
        pos += step
    seen_to = min(hi, starts[-1] + budget) if starts else lo
    return starts, max(0, (n - tail) - max(seen_to, head))


def view_spans(n: int, main_len: int, max_tokens: int, max_chunks: int,
               specs: Sequence[WindowSpec]) -> list[tuple[int, int, int]]:
    """Every view of a prompt of `n` content tokens as (start, end, tokens) in its content tokens, in the order
    SafetyViews builds them: the main row (`main_len` tokens with specials; head+tail when truncated: a window
    across the cut starts in the head and ends in the tail), then each overflow row's views."""
    budget = max_tokens - 2
    head = (budget + 1) // 2
    shift = max(0, n - budget)

    def main_pos(p: int, end: bool) -> int:  # a position in the truncated main row -> in the prompt
        return p if (p <= head if end else p < head) else p + shift

    spans = [(main_pos(a, False), main_pos(b, True), b - a) for a, b in window_spans(main_len - 2, specs)]
    if shift:
        spans[0] = (0, n, n)  # the main row's mean stands for the whole prompt
        hi = min(n, n - (budget - head) + 32)
        for a in overflow_starts(n, max_tokens, max_chunks)[0]:
            length = min(a + budget, hi) - a
            spans.extend((a + x, a + y, y - x) for x, y in window_spans(length, specs))
    return spans


def pad_rows(rows: Sequence[Sequence[int]], pad_id: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """int64 (input_ids, attention_mask) [R,T] for token rows of different lengths (each row non-empty)."""
    lens = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    mask = (np.arange(int(lens.max())) < lens[:, None]).astype(np.int64)
    ids = np.full(mask.shape, pad_id, dtype=np.int64)
    ids[mask.astype(bool)] = np.concatenate([np.asarray(r, dtype=np.int64) for r in rows])
    return ids, mask


@dataclass(frozen=True, slots=True)
class SafetyScores:
    """Per-label probabilities of one prompt (max over its windows) and the share of its tokens scored."""

    scores: dict[str, float]
    coverage: float = 1.0


def encode_by_length(encode, ids: np.ndarray, mask: np.ndarray, slack: float = 1.25,  # type: ignore[no-untyped-def]
                     spare: int = 48) -> np.ndarray:
    """Token states [R,T,D] of right-padded rows `ids`/`mask` [R,T], encoded in runs of rows of similar length.

    One padded batch of segments costs R x T token positions however short most rows are (a prompt's sentences
    and sentence pairs differ in length several-fold); sorting rows by length and cutting a new batch whenever
    padding would exceed both `slack` x the batch's real tokens and `spare` token positions (a few short rows stay
    one run: an encoder run has a fixed cost too) keeps the encoder's work near the real token count.
    Positions past a row's length are zeros (readers use the lengths). Same rows, same states up to the int8
    encoder's per-batch activation scale (scores move by a few thousandths to, rarely, a few hundredths)."""
    lens = mask.sum(axis=1).astype(np.int64)
    order = np.argsort(lens, kind="stable")
    out: np.ndarray | None = None
    start = 0
    while start < len(order):
        end, total = start + 1, int(lens[order[start]])
        while end < len(order):
            real, padded = total + int(lens[order[end]]), int(lens[order[end]]) * (end + 1 - start)
            if padded > slack * real and padded - real > spare:
                break
            total = real
            end += 1
        idx = order[start:end]
        width = int(lens[idx].max())
        st = encode(ids[idx, :width], mask[idx, :width])
        if out is None:
            out = np.zeros((ids.shape[0], ids.shape[1], st.shape[-1]), dtype=st.dtype)
        out[idx, :width] = st
        start = end
    assert out is not None
    return out


class SafetyViews:
    """Builds the rows the safety head scores for a batch of prompts, from the shared encoder run.

    `tokenizer` is the analyzer's TextTokenizer, `encode(ids, mask) -> token states [R,T,D]` runs the
    encoder for the extra overflow rows. Used by the analyzer at request time and by the training script,
    so both see the same views."""

    def __init__(self, tokenizer, encode, specs: Sequence[WindowSpec], max_chunks: int) -> None:  # type: ignore[no-untyped-def]
        self.tokenizer, self.encode = tokenizer, encode
        self.specs, self.max_chunks = tuple(specs), max_chunks

    def positions(self, lengths: Sequence[int], totals: Sequence[int]) -> list[np.ndarray]:
        """Per text the position features [W_i,4] of its views (`position_features`), from the main row's
        `lengths` and the prompts' content-token counts `totals` alone (no encoder run)."""
        return [position_features(view_spans(n, m, self.tokenizer.max_tokens, self.max_chunks, self.specs), n)
                for m, n in zip(lengths, totals, strict=True)]

    def rows(self, texts: Sequence[str], states: np.ndarray, lengths: Sequence[int],
             truncated: Sequence[bool], input_ids: np.ndarray | None = None,
             ) -> tuple[list[np.ndarray], list[float], list[np.ndarray], list[list[Sequence[int]]]]:
        """Per text: its views float32 [W_i,D], the share of its tokens they cover (0..1), the views'
        position features [W_i,4], and (when the main run's `input_ids` [B,T] are given, else empty lists)
        each view's content-token ids. `states` [B,T,D] and `lengths` come from the main (head+tail) encoder run."""
        views = [window_rows(states[i], lengths[i], self.specs) for i in range(len(texts))]
        vids: list[list[Sequence[int]]] = [[] for _ in texts]
        if input_ids is not None:
            vids = [view_token_rows(input_ids[i, 1 : lengths[i] - 1].tolist(), self.specs) for i in range(len(texts))]
        coverage = [1.0] * len(texts)
        totals = [n - 2 for n in lengths]
        long = [i for i, cut in enumerate(truncated) if cut]
        long_ids = self.tokenizer.content_ids([texts[i] for i in long]) if long else []
        for i, ids in zip(long, long_ids, strict=True):
            totals[i] = len(ids)
        if not long or self.max_chunks <= 0:
            for i in long:
                coverage[i] = (lengths[i] - 2) / max(1, totals[i])
            return views, coverage, self.positions(lengths, totals), vids
        extra: list[list[int]] = []
        owner: list[int] = []
        for i, ids in zip(long, long_ids, strict=True):
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
                if input_ids is not None:
                    vids[i].extend(view_token_rows(extra[r][1:-1], self.specs))
            for i, parts in more.items():
                views[i] = np.concatenate([views[i], *parts])
        return views, coverage, self.positions(lengths, totals), vids

    def segment_rows(self, texts: Sequence[str], max_units: int, with_ids: bool = False,
                     score: Callable[[list[np.ndarray], list[np.ndarray], list[list[Sequence[int]]]], np.ndarray]
                     | None = None, priority: Callable[[list[str]], Sequence[float]] | None = None,
                     extras: Sequence[Sequence[str]] | None = None, extra_units: int | None = None,
                     ) -> tuple[list[np.ndarray], list[np.ndarray], list[list[Sequence[int]]], list[float],
                                list[float], list[np.ndarray]]:
        """Per text the views of its sentence segments (segments.plan_segments), each encoded ALONE and viewed
        exactly as a prompt of its own would be (whole row + windows, its own position features; no overflow
        rows): float32 [S_i,D] views, [S_i,4] position features, (`with_ids`) each view's content ids, the
        share of its sentences' characters encoded alone (segments.SegmentPlan.coverage; 0.0 without units), and
        the share of its `extras` encoded alone (1.0 without them).

        All first-stage units of the batch go through ONE extra encoder run; none when no text has 2 sentences.
        `score(views, pos, ids) -> float [U]` (one entry per unit: its views [V_u,D], [V_u,4], ids) ranks the
        singles of prompts whose pairs did not all fit the budget; the pairs around their best singles
        (segments.choose_pairs) then go through a second run. Without `score` those prompts get singles only.
        `priority` picks the sentences encoded alone when they do not all fit the budget (segments.plan_segments).
        `extras`: per text the request's other texts the guard reads (tool results, system prompt, earlier turns;
        request/parse.ChatRequest.safety_texts), whose units (segments.plan_extra) take what the prompt's own plan
        leaves of the budget (segments.spare_budget), at least `extra_units` rows of their own (segments.extra_budget;
        None: half of `max_units`), and go through the same first run, their views after the prompt's; the fifth list is per text the share of those texts encoded alone (segments.ExtraPlan.coverage),
        the last per text a bool [S_i] mask of the views that are the extras' (the rest are the prompt's)."""
        mt = self.tokenizer.max_tokens
        plans = [plan_segments(t, max_units, mt, priority) for t in texts]
        reserve = default_read_rows(max_units) if extra_units is None else extra_units
        more_units = [plan_extra(ex, extra_budget(spare_budget(t, p, max_units, mt), reserve, mt), mt)
                      if ex and max_units > 0 else ExtraPlan()
                      for t, p, ex in zip(texts, plans, extras or [()] * len(texts), strict=True)]
        first = self._alone([[*p.texts(t), *e.units] for p, t, e in zip(plans, texts, more_units, strict=True)],
                            with_ids)
        # per text, per unit of the first run: True for the extras' units (after the prompt's own)
        is_extra = [[k >= len(us) - len(e.units) for k in range(len(us))] for us, e in zip(first, more_units,
                                                                                             strict=True)]
        if score is not None and any(p.deferred and p.singles for p in plans):
            owners = [i for i, p in enumerate(plans) if p.deferred and p.singles]
            flat = [u for i in owners for u in first[i][: len(plans[i].singles)]]
            s = np.asarray(score([u[0] for u in flat], [u[1] for u in flat], [u[2] for u in flat]))
            second_units: list[list[str]] = [[] for _ in texts]
            at = 0
            for i in owners:
                p, t = plans[i], texts[i]
                k = len(p.singles)
                second_units[i] = [t[p.spans[j][0]:p.spans[j + 1][1]] for j in choose_pairs(t, p, s[at : at + k], mt)]
                at += k
            for i, more in enumerate(self._alone(second_units, with_ids)):
                first[i].extend(more)
                is_extra[i] += [False] * len(more)  # the prompt's chosen pairs
        seg_views = [np.concatenate([u[0] for u in us]) if us else np.zeros((0, 1), np.float32) for us in first]
        pos = [np.concatenate([u[1] for u in us]) if us else np.zeros((0, 4), np.float32) for us in first]
        vids = [[r for u in us for r in u[2]] for us in first]
        masks = [np.array([x for u, x in zip(us, xs, strict=True) for _ in range(len(u[0]))], bool)
                 for us, xs in zip(first, is_extra, strict=True)]
        return seg_views, pos, vids, [p.coverage for p in plans], [e.coverage for e in more_units], masks

    def _alone(self, units: list[list[str]], with_ids: bool,
               ) -> list[list[tuple[np.ndarray, np.ndarray, list[Sequence[int]]]]]:
        """Per text, per unit text: its (views [V,D], position features [V,4], view ids) as a prompt of its own,
        all units of the batch in one encoder run (by length: encode_by_length)."""
        flat = [u for us in units for u in us]
        out: list[list[tuple[np.ndarray, np.ndarray, list[Sequence[int]]]]] = [[] for _ in units]
        if not flat:
            return out
        tb = self.tokenizer.encode(flat)
        st = encode_by_length(self.encode, tb.input_ids, tb.attention_mask)
        alone = SafetyViews(self.tokenizer, self.encode, self.specs, 0)
        v, _, p, ids = alone.rows(flat, st, tb.lengths, tb.truncated, tb.input_ids if with_ids else None)
        at = 0
        for i, us in enumerate(units):
            out[i] = [(v[k], p[k], ids[k]) for k in range(at, at + len(us))]
            at += len(us)
        return out


class SafetyScorer:
    """The safety head over every view of each prompt: per label the max score, and the coverage.

    `head` is the loaded `jailbreak_head` (embedding [R,D] -> probs [R,len(labels)], sigmoid per label). A head
    with a lexical branch also takes each view's word-piece ids (`input_ids`/`attention_mask` [R,T]) and gives
    `lex_logits` [R,len(lexical)]; for those labels the score is sigmoid of the mean of two logits: the
    embedding branch's max over views and the lexical branch's max over views (modelbuild/train_jailbreak.py)."""

    def __init__(self, head, labels: Sequence[str], views: SafetyViews,  # type: ignore[no-untyped-def]
                 positional: bool = False, lexical: Sequence[str] = (), segments: int = 0,
                 memory=None, memory_gate: float = 0.0,  # type: ignore[no-untyped-def]
                 memory_injection_gate: float = 1.0, read_segments: int | None = None) -> None:
        self.head, self.labels, self.views, self.positional = head, tuple(labels), views, positional
        self.lexical, self.segments = tuple(lexical), int(segments)
        # the request's other texts' own reserve of segment rows (signals.jailbreak.read_segments; None: half of
        # `segments`, segments.default_read_rows)
        self.read_segments = default_read_rows(self.segments) if read_segments is None else int(read_segments)
        self._lex_cols = [self.labels.index(lab) for lab in self.lexical]
        # the jailbreak exemplar memory (`jailbreak_memory.onnx`: view rows [R,D] -> probs [R,1], the k-nearest vote
        # of stored jailbreak witness views): the prompt's jailbreak score is max(head, max over views of the vote),
        # looked up only when the head's jailbreak score is at least `memory_gate`, and only for the views of a part
        # (the prompt; the request's other texts) whose injection score is under `memory_injection_gate`
        # (jailbreak_memory.labels.json `gate`, `injection_gate`; `_pool`)
        self.memory, self.memory_gate = memory, float(memory_gate)
        self.memory_injection_gate = float(memory_injection_gate)
        self._jb_col = self.labels.index("jailbreak") if memory is not None else -1
        self._inj_col = self.labels.index("injection") if memory is not None and "injection" in self.labels else -1

    @classmethod
    def load(cls, head, labels_path: Path, tokenizer, encoder, max_chunks: int,  # type: ignore[no-untyped-def]
             max_segments: int | None = None, memory=None,  # type: ignore[no-untyped-def]
             read_segments: int | None = None) -> SafetyScorer:
        """`encoder` is the analyzer's Encoder (its token states feed the overflow and segment rows' views);
        `max_segments` caps the head's `segments` (None: the head's value; 0: off); `memory` the loaded
        `jailbreak_memory` head (None: the head alone); `read_segments` the other texts' own reserve of rows (None:
        half the segments; ignored when segments are off). Raises ValueError when the files do not fit together."""
        labels, specs = read_head_meta(labels_path)
        meta = json.loads(labels_path.read_text())
        lexical = tuple(str(x) for x in meta.get("lexical_labels", ()))
        if not set(lexical) <= set(labels) or bool(lexical) != bool(getattr(head, "wants_tokens", False)):
            raise ValueError(f"{labels_path}: lexical_labels {list(lexical)} do not match the head's inputs; "
                             "run `make models`")

        def encode(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
            return encoder(ids, mask, tokens=True).tokens

        gate, inj_gate = 0.0, 1.0
        if memory is not None:
            if tuple(memory.labels) != ("jailbreak",) or "jailbreak" not in labels:
                raise ValueError(f"{memory.name}: labels {list(memory.labels)} (expected ['jailbreak']); "
                                 "run `make models`")
            mmeta = json.loads((labels_path.parent / f"{memory.name}.labels.json").read_text())
            gate, inj_gate = float(mmeta.get("gate", 0.0)), float(mmeta.get("injection_gate", 1.0))
        return cls(head, labels, SafetyViews(tokenizer, encode, specs, max_chunks),
                   bool(meta.get("position_features")), lexical, int(meta.get("segments", 0))
                   if max_segments is None else min(max_segments, int(meta.get("segments", 0))), memory, gate,
                   inj_gate, read_segments)

    def __call__(self, texts: Sequence[str], states: np.ndarray, lengths: Sequence[int],
                 truncated: Sequence[bool], input_ids: np.ndarray | None = None,
                 extras: Sequence[Sequence[str]] | None = None) -> list[SafetyScores]:
        """One SafetyScores per text; `states` [B,T,D], `lengths`, `truncated` and `input_ids` [B,T] from the
        shared encoder run (`input_ids` is needed by a head with a lexical branch). `extras`: per text the other
        texts of its request to score too (tool results, system prompt, earlier turns), as segment units within
        the same budget after the text's own (`SafetyViews.segment_rows`; none when segments are off); their
        views are max-pooled with the text's, and the coverage is the lower of the two."""
        if self.lexical and input_ids is None:
            raise ValueError("this safety head has a lexical branch: pass the encoder run's input_ids")
        views, coverage, pos, vids = self.views.rows(texts, states, lengths, truncated,
                                                     input_ids if self.lexical else None)
        parts = [np.zeros(len(v), bool) for v in views]  # per view: True for the request's other texts' units
        if self.segments:
            seg_v, seg_p, seg_ids, seg_cov, extra_cov, extra_mask = self.views.segment_rows(
                texts, self.segments, bool(self.lexical), self._unit_scores,
                self._lexical_priority if self.lexical else None, extras, self.read_segments)
            for i, sv in enumerate(seg_v):
                if len(sv):
                    parts[i] = np.concatenate([parts[i], extra_mask[i]])
                    views[i] = np.concatenate([views[i], sv])
                    pos[i] = np.concatenate([pos[i], seg_p[i]])
                    vids[i] = [*vids[i], *seg_ids[i]]
                # every sentence encoded alone sees the whole prompt even where the token rows stop (max_chunks)
                coverage[i] = min(max(coverage[i], seg_cov[i]), extra_cov[i])
        top = self._pool(views, pos, vids, memory=True, parts=parts)
        return [SafetyScores({lab: float(p) for lab, p in zip(self.labels, t, strict=True)}, cov)
                for t, cov in zip(top, coverage, strict=True)]

    def _lexical_priority(self, sentences: list[str]) -> np.ndarray:
        """float64 [N]: each sentence's highest word-piece-branch logit (lexical labels) with no encoder run: which
        sentences of a prompt too long for the segment budget are encoded alone. A client that wants its attack
        left out has to write more attack-like sentences than the attack itself (which are then scored)."""
        tok = self.views.tokenizer
        keep = tok.max_tokens - 2  # as the sentence's own row would hold it (head only: a ranking, not a score)
        ids, mask = pad_rows([r[:keep] if len(r) else [0] for r in tok.content_ids(sentences)], tok.pad_id)
        width = next(int(i.shape[-1]) for i in self.head.session.get_inputs() if i.name == "embedding")
        x = np.zeros((len(sentences), width), np.float32)
        (lex,) = self.head.run(("lex_logits",), x, tokens=(ids, mask))
        return lex.max(axis=1).astype(np.float64)

    def _unit_scores(self, views: list[np.ndarray], pos: list[np.ndarray],
                     vids: list[list[Sequence[int]]]) -> np.ndarray:
        """float64 [U]: each group of views' highest label probability, as `_pool` scores it (segments ranking)."""
        return self._pool(views, pos, vids).max(axis=1)

    def _pool(self, views: list[np.ndarray], pos: list[np.ndarray],
              vids: list[list[Sequence[int]]], memory: bool = False,
              parts: Sequence[np.ndarray] | None = None) -> np.ndarray:
        """float64 [G,L]: per group of views (views [V_g,D], position features [V_g,4], view ids) the per-label
        probability: max over its views, fused with the lexical branch's max for the lexical labels. One head run;
        with `memory` (and a memory loaded) one memory run too: the jailbreak label is max(that, the memory's
        highest vote over the group's views). The segment ranking (`_unit_scores`) reads the head alone."""
        x = np.concatenate(views)
        if self.positional:
            x = np.concatenate([x, np.concatenate(pos)], axis=1)
        if self.lexical:
            ids, mask = pad_rows([r if len(r) else [0] for rows in vids for r in rows], self.views.tokenizer.pad_id)
            probs, lex = self.head.run(("probs", "lex_logits"), x, tokens=(ids, mask))
        else:
            probs, lex = self.head(x), None
        out = np.zeros((len(views), len(self.labels)), np.float64)
        at = 0
        for g, v in enumerate(views):
            top = probs[at : at + len(v)].max(axis=0).astype(np.float64)
            if lex is not None:
                z = fuse_logits(top[self._lex_cols], lex[at : at + len(v)].max(axis=0))
                top[self._lex_cols] = 1.0 / (1.0 + np.exp(-z))
            at += len(v)
            out[g] = top
        if memory and self.memory is not None:
            # only prompts the head already gives some jailbreak score (>= memory_gate) are looked up: an ordinary
            # prompt pays nothing for the memory. Nor the views of a part the head reads as an injection (its pooled
            # injection >= memory_injection_gate): the memory holds no injection views, so an attacked document's
            # views would vote jailbreak and the refusal would name the wrong label. Parts (`parts`, per view True
            # for the units of the request's other texts): the prompt, and the other texts. Per part, not per
            # request (review17): one injection-ish tool result (status lines the head scores injection 0.91) beside
            # a jailbreak switched the memory off for the whole request, and the jailbreak then met the memory's
            # higher operating point with the head's score alone.
            cuts = np.cumsum([0] + [len(v) for v in views])
            votes = np.zeros(len(probs), bool)
            for g in np.where(out[:, self._jb_col] >= self.memory_gate)[0]:
                part = parts[g] if parts is not None else np.zeros(len(views[g]), bool)
                for side in (False, True):
                    idx = np.arange(cuts[g], cuts[g + 1])[part == side]
                    if len(idx) and self._part_injection(probs[idx], lex[idx] if lex is not None else None) \
                            < self.memory_injection_gate:
                        votes[idx] = True
            read = [g for g in range(len(views)) if votes[cuts[g]:cuts[g + 1]].any()]
            if read:
                rows = np.concatenate([np.arange(cuts[g], cuts[g + 1])[votes[cuts[g]:cuts[g + 1]]] for g in read])
                # [R], clipped: the stored 2-bit vote can land a little past 1 (1.0004), a probability to the rest
                vote = np.clip(self.memory(x[rows])[:, 0].astype(np.float64), 0.0, 1.0)
                sizes = [int(votes[cuts[g]:cuts[g + 1]].sum()) for g in read]
                starts = np.cumsum([0] + sizes)[:-1]
                out[read, self._jb_col] = np.maximum(out[read, self._jb_col], np.maximum.reduceat(vote, starts))
        return out

    def _part_injection(self, probs: np.ndarray, lex: np.ndarray | None) -> float:
        """The injection score of some views pooled as `_pool` pools a prompt's (max, fused with the lexical
        branch's max when injection is a lexical label); 0.0 without an injection label."""
        if self._inj_col < 0:
            return 0.0
        p = float(probs[:, self._inj_col].max())
        if lex is not None and self._inj_col in self._lex_cols:
            z = fuse_logits(np.float64(p), lex[:, self._lex_cols.index(self._inj_col)].max())
            p = float(1.0 / (1.0 + np.exp(-z)))
        return p


def fuse_logits(probs: np.ndarray, lex_logits: np.ndarray) -> np.ndarray:
    """The fused logit per label: mean of logit(embedding branch's max probability) and the lexical branch's max
    logit (a fixed rule, no fitted weight). Shapes broadcast; float64."""
    p = np.clip(np.asarray(probs, np.float64), 1e-7, 1.0 - 1e-7)
    return 0.5 * (np.log(p / (1.0 - p)) + np.asarray(lex_logits, np.float64))
