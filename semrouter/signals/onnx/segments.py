"""Sentence segments of a prompt, for safety views that are encoded on their own (no surrounding context).

Token windows of the shared encoder run cannot protect a short attack sentence behind a few ordinary ones:
every token state is contextualised by the whole prompt, so the attack's window reads differently from the
attack alone. The safety head therefore also scores *segments* that go through the encoder by themselves,
each scored exactly as if it had been sent as a prompt of its own (safety.SafetyViews.segment_rows), so an
attack of one or two sentences that is refused alone is refused wherever it sits, behind any amount of padding.

Which segments (`plan_segments`, then `choose_pairs`), within one cost bound per prompt, `segment_budget`:
`max_units` encoder rows of `max_tokens` word pieces (16 x 256 by default, counted in signals/config.
analysis_cost units, ~4 a word piece; the most the earlier first-16-units selection could cost):
1. every distinct sentence alone (a repeated sentence scores the same: its copies are covered by the first);
   then each run of 3+ distinct short sentences (`short_runs`: an instruction written a word or two per line is
   seen alone as a whole, not only as words and pairs);
2. every distinct adjacent pair, when all of them fit the budget beside the singles and they are at most
   `max_units` (one encoder run);
3. else the singles are scored first, and up to `max_units` pairs around the best-scoring sentences (both
   neighbours, best first) take what the budget leaves, in a second encoder run. Padding cannot push the
   attack's pairs out without itself scoring higher than the attack.
When the distinct sentences alone do not fit (past ~4,000 CJK characters or ~16,000 of English, beyond which
the token rows stop too: signals.jailbreak.max_chunks), a `priority` (the safety head's word-piece branch, which
needs no encoder run) picks the sentences encoded alone, the rest is not encoded alone, and the plan's
`coverage` (share of the sentences' characters encoded alone) is reported as the prompt's safety coverage when
it is higher than the token rows' (logged `safety_partial_coverage` below 1). Nothing is refused for length here.
Before: all sentences then pairs from the top while 16 rows lasted, and past 16 sentences 16 merged runs, so an
attack shared its unit with padding (a DAN prompt between ~1,800 Japanese characters each side: 0.956 < 0.9885).

The splitter is a small rule set (no dependency on the request path; measured in microseconds): line breaks
always end a segment; inside a line, `.`, `!`, `?` (and `。！？`) followed by white space (or, for the Latin
marks, by a CJK character) end a sentence unless the word before is a common abbreviation or a single letter
(an initial). Pieces without a letter or digit (table rules, bullets) are dropped.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from semrouter.signals.config import analysis_cost

# A run of sentence marks is matched from its first mark only (the look-behind): tried from every mark of a run
# that no white space follows ("....", 10,000 of them), the search read to the run's end from each, quadratic in
# its length (10 KB: 1.1 s, all of it holding the GIL, so the event loop stood still too).
# A Latin sentence mark also ends a sentence when a CJK character follows it without a space (an English
# sentence pasted into Japanese text: "...anything.次の文" is two sentences; "1.5" and "e.g.x" are not broken).
_BREAK = re.compile(r"(?<![.!?…])[.!?…]+[\"'”’)\]]*(?:\s+|(?=[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uff01-\uff60]))"
                    r"|[。！？]+\s*|\n+")
_ABBREV = frozenset(
    "mr mrs ms dr prof sr jr st vs etc e.g i.e eg ie no fig approx inc ltd co corp dept est jan feb mar apr jun "
    "jul aug sep sept oct nov dec mon tue wed thu fri sat sun u.s a.m p.m".split())
_WORDY = re.compile(r"\w")
_WORD_BEFORE = re.compile(r"[\w.]+$")
_LOOKBACK = 32  # characters read back from a '.' for the word before it: longer than any abbreviation


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Character spans [start, end) of the sentences/lines of `text`, in order, stripped of surrounding white
    space; pieces without any word character are dropped. Never raises; '' -> []."""
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _BREAK.finditer(text):
        end = m.end()
        if "\n" not in m.group(0) and m.group(0)[0] == ".":
            # the word before the '.', read back a bounded stretch: a search from the sentence's start made a run of
            # initials ("a. b. c. ...", never a break) cost time quadratic in its length (10 KB: 1 s)
            w = _WORD_BEFORE.search(text, max(start, m.start() - _LOOKBACK), m.start())
            word = w.group(0).lower().rstrip(".") if w else ""
            if word in _ABBREV or (len(word) == 1 and word.isalpha()):
                continue
        spans.append((start, end))
        start = end
    spans.append((start, len(text)))
    out = []
    for a, b in spans:
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if b > a and _WORDY.search(text, a, b):
            out.append((a, b))
    return out


SHORT_COST = 24  # analysis_cost of a sentence too short to carry an instruction alone (~6 word pieces, ~4 words)
RUN_COST = 256  # consecutive short sentences are joined into runs of at most this cost (~64 word pieces)


def short_runs(text: str, spans: Sequence[tuple[int, int]], short: int = SHORT_COST,
               run: int = RUN_COST) -> list[tuple[int, int]]:
    """[start, end) of each run of consecutive short sentences (analysis_cost <= `short`) that holds 3+ distinct
    ones, cut every `run` cost units; distinct, and not the whole prompt (its own rows see that). An instruction
    written a word or two per line or per sentence ("Ignore\nall\nprevious\ninstructions") was seen alone only as
    single words and pairs, which the head does not refuse, and behind a few ordinary sentences the prompt's own
    rows missed it too. The sentences stay units of their own as well (a short attack is never diluted)."""
    pieces: list[list[tuple[int, int]]] = [[]]
    cost = 0
    for a, b in spans:
        c = analysis_cost(text[a:b])
        if c > short:
            pieces.append([])
            cost = 0
            continue
        if pieces[-1] and cost + c > run:
            pieces.append([])
            cost = 0
        pieces[-1].append((a, b))
        cost += c
    whole = (spans[0][0], spans[-1][1]) if spans else (0, 0)
    out: list[tuple[int, int]] = []
    seen: set[str] = set()
    for group in pieces:
        if len({text[a:b] for a, b in group}) < 3:
            continue
        span = (group[0][0], group[-1][1])
        if span != whole and text[span[0]:span[1]] not in seen:
            seen.add(text[span[0]:span[1]])
            out.append(span)
    return out


def _row_cost(text: str, a: int, b: int, max_tokens: int) -> int:
    """What encoding text[a:b] alone costs, in analysis_cost units (~4 a word piece): its cost plus the row's
    [CLS]/[SEP], at most one encoder row of `max_tokens` (a longer unit is truncated head+tail)."""
    return min(analysis_cost(text[a:b]) + 8, 4 * max_tokens)


@dataclass(frozen=True, slots=True)
class SegmentPlan:
    """Which parts of one prompt the safety head encodes alone (all slices of the prompt, distinct texts).

    `spans`: its sentences [start, end) in characters; `singles`: indices into `spans` encoded alone (one per
    distinct sentence text, in order, within the budget); `pairs`: i for the pair (i, i+1), chosen now (every
    pair, when every pair fits the budget beside the singles); `deferred`: pairs are to be chosen after the
    singles are scored (`choose_pairs`); `left`: what the budget leaves for them (analysis_cost units) and
    `max_pairs` how many they may be;
    `runs`: [start, end) of runs of 3+ distinct short sentences (`short_runs`) encoded alone as one unit each;
    `coverage`: share of the sentences' characters whose text is encoded alone (0..1; 0.0 when no unit is
    encoded: then only the prompt's own rows saw it; a sentence longer than one row counts the share it keeps)."""

    spans: tuple[tuple[int, int], ...] = ()
    singles: tuple[int, ...] = ()
    pairs: tuple[int, ...] = ()
    deferred: bool = False
    left: int = 0
    coverage: float = 0.0
    max_pairs: int = 0
    runs: tuple[tuple[int, int], ...] = ()

    def texts(self, text: str) -> list[str]:
        """The unit texts of the first stage: the singles, the runs of short pieces, then the pairs chosen now."""
        s = self.spans
        return ([text[s[i][0]:s[i][1]] for i in self.singles] + [text[a:b] for a, b in self.runs]
                + [text[s[i][0]:s[i + 1][1]] for i in self.pairs])


def segment_budget(max_units: int, max_tokens: int = 256) -> int:
    """The cost bound of one prompt's segment rows, in analysis_cost units: `max_units` encoder rows of
    `max_tokens` word pieces (what 16 rows cost before units were chosen by score; 16 x 256 -> 16,384)."""
    return max(0, max_units) * 4 * max_tokens


def plan_segments(text: str, max_units: int = 16, max_tokens: int = 256,
                  priority: Callable[[list[str]], Sequence[float]] | None = None) -> SegmentPlan:
    """The first stage for `text` (see module doc): no units for fewer than 2 sentences; else every distinct
    sentence alone while their cost fits `segment_budget(max_units, max_tokens)`, then every distinct adjacent
    pair when all of them fit what is left and they are at most `max_units`, else up to `max_units` pairs are
    deferred to `choose_pairs`.

    When the distinct sentences do not all fit, which ones are encoded alone is chosen by `priority(sentences)`
    (one float per distinct sentence text, higher first; e.g. the safety head's word-piece branch, which needs no
    encoder run), else by position; the rest is left out and `coverage` says what share was kept. Never raises."""
    spans = tuple(split_sentences(text))
    n = len(spans)
    if n < 2 or max_units <= 0:
        return SegmentPlan(spans)
    budget = segment_budget(max_units, max_tokens)
    first: dict[str, int] = {}  # distinct sentence text -> its first index
    for i, (a, b) in enumerate(spans):
        first.setdefault(text[a:b], i)
    cost = {t: _row_cost(text, *spans[i], max_tokens) for t, i in first.items()}
    order = list(first)
    if sum(cost.values()) > budget and priority is not None:
        p = list(priority(order))
        order = [order[k] for k in sorted(range(len(order)), key=lambda k: (-p[k], k))]
    chosen: list[int] = []
    for t in order:
        if cost[t] <= budget:
            budget -= cost[t]
            chosen.append(first[t])
    kept = {text[spans[i][0]:spans[i][1]] for i in chosen}
    # a sentence longer than one encoder row keeps its head+tail share; a repeat is covered by its first copy
    covered = sum((b - a) * min(1.0, 4 * max_tokens / (analysis_cost(text[a:b]) + 8))
                  for a, b in spans if text[a:b] in kept)
    coverage = covered / max(1, sum(b - a for a, b in spans))
    singles = tuple(sorted(chosen))
    runs = []
    for a, b in short_runs(text, spans):
        if (c := _row_cost(text, a, b, max_tokens)) <= budget:
            budget -= c
            runs.append((a, b))
    pairs = _distinct_pairs(text, spans, range(n - 1))
    pair_cost = sum(_row_cost(text, spans[i][0], spans[i + 1][1], max_tokens) for i in pairs)
    if pair_cost <= budget and len(singles) == len(first) and len(pairs) <= max_units:
        return SegmentPlan(spans, singles, tuple(pairs), False, budget - pair_cost, coverage, 0, tuple(runs))
    return SegmentPlan(spans, singles, (), True, budget, coverage, max_units, tuple(runs))


def _distinct_pairs(text: str, spans: Sequence[tuple[int, int]], order: Iterable[int]) -> list[int]:
    seen: set[str] = set()
    out = []
    for i in order:
        t = text[spans[i][0]:spans[i + 1][1]]
        if t not in seen:
            seen.add(t)
            out.append(i)
    return out


def choose_pairs(text: str, plan: SegmentPlan, scores: Sequence[float], max_tokens: int = 256) -> list[int]:
    """The second stage: pairs (i, i+1) around the sentences whose single scored highest (`scores`: one per
    `plan.singles`, e.g. the head's highest label probability), both neighbours of each, best first, while their
    cost fits `plan.left`, at most `plan.max_pairs` of them. A sentence that was not encoded alone (past the
    budget) ranks by its copy's score, or last. Ties go by position. [] when the plan is not deferred."""
    if not plan.deferred or plan.left <= 0:
        return []
    spans = plan.spans
    n = len(spans)
    by_text = {text[spans[i][0]:spans[i][1]]: float(s) for i, s in zip(plan.singles, scores, strict=True)}
    score = [by_text.get(text[a:b], float("-inf")) for a, b in spans]
    # a pair ranks by its better sentence: a client cannot push a pair down without making another sentence
    # look more like an attack than the attack itself
    ranked = sorted(range(n - 1), key=lambda i: (-max(score[i], score[i + 1]), i))
    left, out = plan.left, []
    for i in _distinct_pairs(text, spans, ranked):
        if len(out) >= plan.max_pairs:
            break
        c = _row_cost(text, spans[i][0], spans[i + 1][1], max_tokens)
        if c <= left:
            left -= c
            out.append(i)
    return sorted(out)


def segment_units(text: str, max_units: int = 16, max_tokens: int = 256) -> list[str]:
    """The first-stage unit texts of `text` (`plan_segments(...).texts`): [] for fewer than 2 sentences, else
    each distinct sentence (within the budget), then every distinct adjacent pair when they all fit. Training
    (modelbuild/train_jailbreak.py) uses this stage alone; at request time deferred pairs follow by score."""
    return plan_segments(text, max_units, max_tokens).texts(text)


def spare_budget(text: str, plan: SegmentPlan, max_units: int = 16, max_tokens: int = 256) -> int:
    """What the segment budget of a prompt leaves for the request's other texts (`plan_extra`), in analysis_cost
    units, once `plan` (`plan_segments(text, ...)`) has taken its share: the whole budget when the prompt has no
    units (one sentence), what is left after its singles, runs and pairs, and for a deferred plan what is left
    after the dearest `max_pairs` distinct pairs it may still choose (an upper bound: the prompt keeps priority)."""
    if not (plan.singles or plan.runs or plan.pairs or plan.deferred):
        return segment_budget(max_units, max_tokens)
    if not plan.deferred:
        return plan.left
    s = plan.spans
    costs = sorted((_row_cost(text, s[i][0], s[i + 1][1], max_tokens)
                    for i in _distinct_pairs(text, s, range(len(s) - 1))), reverse=True)
    return max(0, plan.left - sum(costs[: plan.max_pairs]))


@dataclass(frozen=True, slots=True)
class ExtraPlan:
    """The units of a request's other texts (tool results, system prompt, earlier turns) encoded alone.

    `units`: distinct unit texts, in the order they were chosen; `coverage`: share of the texts' characters
    encoded alone in a whole text, a block or a sentence (0..1; 1.0 when there are no texts)."""

    units: tuple[str, ...] = ()
    coverage: float = 1.0


_MIN_UNIT = 12  # the cost of the smallest unit (a word and the row's [CLS]/[SEP])


def plan_extra(texts: Sequence[str], budget: int, max_tokens: int = 256, pairs: bool = True) -> ExtraPlan:
    """Units for the untrusted texts of a request beside its classified prompt, within `budget` analysis_cost
    units (`extra_budget`: what the prompt's plan leaves, at least the texts' own reserve), each scored as a prompt
    of its own (no surrounding context), in stages: each text whole when it fits one encoder row; the row-sized
    blocks of consecutive sentences of each longer text (`_blocks`: each with its own windows, as the overflow rows
    read a long prompt); every distinct sentence; each run of 3+ short sentences; every distinct adjacent pair
    (`pairs`). Within a stage the texts take turns (round-robin, `texts` in priority order: the newest tool result
    first): every text's first block before any text's second, every text's first sentence before any second
    sentence. So no text is starved by another: a long newest result cannot spend the budget before an older one
    has been read at all (trust18), and an instruction planted in a tool result is seen alone as its sentence, its
    pair and its text, however ordinary the rest of the document. A unit is kept when it fits what is left
    (greedy). Linear in the texts' length; once the budget is spent the rest is only counted.
    Never raises; [] texts -> no units, coverage 1.0."""
    units: list[str] = []
    seen: set[str] = set()
    left = budget

    def take(u: str) -> bool:
        nonlocal left
        if u in seen:
            return True
        if left < _MIN_UNIT:  # spent: the rest is only counted (linear), not costed
            return False
        c = _row_cost(u, 0, len(u), max_tokens)
        if c > left:
            return False
        left -= c
        seen.add(u)
        units.append(u)
        return True

    whole = [bool(t.strip()) and analysis_cost(t) + 8 <= 4 * max_tokens and take(t.strip()) for t in texts]
    spans = [split_sentences(t) if left >= _MIN_UNIT else [] for t in texts]  # none split when wholes spent it
    kept: list[set[tuple[int, int]]] = [set() for _ in texts]
    blocks = [_blocks(t, spans[k], max_tokens) if not whole[k] else [] for k, t in enumerate(texts)]
    for k, (a, b) in _round_robin(blocks):
        if take(texts[k][a:b]):
            kept[k].update((x, y) for x, y in spans[k] if a <= x and y <= b)
    for k, (a, b) in _round_robin(spans):
        if take(texts[k][a:b]):
            kept[k].add((a, b))
    runs = [short_runs(t, spans[k]) if len(spans[k]) > 1 and left >= _MIN_UNIT else [] for k, t in enumerate(texts)]
    for k, (a, b) in _round_robin(runs):
        take(texts[k][a:b])
    if pairs and left >= _MIN_UNIT:
        adjacent = [[(sp[i][0], sp[i + 1][1]) for i in _distinct_pairs(t, sp, range(len(sp) - 1))]
                    for t, sp in zip(texts, spans, strict=True)]
        for k, (a, b) in _round_robin(adjacent):
            take(texts[k][a:b])
    # the share of the texts' readable characters that were encoded: their sentences' spans, not the white space
    # between them nor pieces without a word character (a JSON brace line) in a text that has sentences. review18:
    # counting every character put a fully read multi-row text at 0.92-0.98 (a blank line or a brace is never in a
    # unit), so on_partial_coverage: block refused every honest tool result longer than one row as unscored.
    total = covered = 0.0
    for k, t in enumerate(texts):
        if whole[k]:
            total += len(t)
            covered += len(t)
            continue
        readable = spans[k] or split_sentences(t)  # unsplit when the budget was spent first
        # a long text without a single sentence (symbols only) is read by nothing: all of it unread
        total += sum(b - a for a, b in readable) if readable else len(t.strip())
        covered += sum((b - a) * min(1.0, 4 * max_tokens / (analysis_cost(t[a:b]) + 8)) for a, b in kept[k])
    if not total:
        return ExtraPlan(tuple(units), 1.0)
    return ExtraPlan(tuple(units), min(1.0, covered / total))


def extra_budget(spare: int, reserve_units: int, max_tokens: int = 256) -> int:
    """The budget of a request's other texts (`plan_extra`), in analysis_cost units: what the prompt's plan leaves
    (`spare_budget`), but at least their own reserve of `reserve_units` encoder rows (signals.jailbreak.
    read_segments), so that a prompt that spends its whole budget (a last message of thousands of tiny sentences)
    cannot leave them unread. At most max(prompt budget, reserve): a short prompt's agent turn costs what it did."""
    return max(spare, segment_budget(reserve_units, max_tokens))


def default_read_rows(max_units: int) -> int:
    """The other texts' own reserve of rows when signals.jailbreak.read_segments is unset: half the prompt's
    `max_units`, rounded up (16 -> 8), so that a request costs at most 1.5x the rows it did before the reserve."""
    return (max(0, max_units) + 1) // 2


def _round_robin(lists: Sequence[Sequence[tuple[int, int]]]) -> Iterator[tuple[int, tuple[int, int]]]:
    """(k, item) over `lists` in turns: the first item of each list (in list order), then the second of each, ...
    Linear in the items."""
    queue = deque((k, 0) for k, xs in enumerate(lists) if xs)
    while queue:
        k, i = queue.popleft()
        yield k, lists[k][i]
        if i + 1 < len(lists[k]):
            queue.append((k, i + 1))


def _blocks(text: str, spans: Sequence[tuple[int, int]], max_tokens: int) -> list[tuple[int, int]]:
    """[start, end) of consecutive sentences of `text` packed into encoder rows of at most `max_tokens` word
    pieces (analysis_cost), each block starting with the last sentence of the one before (an instruction across a
    boundary is whole in one): a text longer than one row read in row-sized pieces, each with its own windows."""
    out: list[tuple[int, int]] = []
    i, n = 0, len(spans)
    cap = 4 * max_tokens - 8
    while i < n:
        j, cost = i, 0
        while j < n and (j == i or cost + analysis_cost(text[spans[j][0]:spans[j][1]]) + 1 <= cap):
            cost += analysis_cost(text[spans[j][0]:spans[j][1]]) + 1
            j += 1
        out.append((spans[i][0], spans[j - 1][1]))
        if j >= n:
            break
        i = j - 1 if j - 1 > i else j
    return out
