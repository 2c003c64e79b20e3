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
whose prompts differ in one run of a few words only (`substituted`, `long_substitution_words`) also gets 0:
the model served such one-term swaps (PostgreSQL/MySQL, GET/POST) the more often the more shared context
surrounded them (benchmarks/RESULTS.md, ninth session `cache10`). `short_substitution_words` does the same for
pairs of at most `max_len` tokens (opt-in: at chat length the model serves one-word swaps too, 20-57% of random
ones, but refusing them costs one-word synonym rewordings; ninth session `cache11`). Answer-neutral swaps are no
substitution (`neutral_swap`: typos, case, inflections, shorthand, function and politeness words), and a
substitution whose runs name nothing and hold the same relation, question, scope and pronoun words
(`meant_differs`: "to" / "from" is no near-synonym) may be let through as a near-synonym (`synonym_score`, with
the cache's cosine of the two runs alone: semantic.py). One ONNX Runtime session,
one intra-op thread; `score` blocks (the fp32 model: p50 ~10 ms for one chat-length pair, ~17 ms for three,
on a loaded 2-core machine), so the cache calls it in a worker thread.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import NamedTuple
from pathlib import Path

import numpy as np

from semrouter.cache.equivalent import _DIRECTED, _FILLER, _SCOPE, _SHORT_RE, _SHORTHAND, _one_edit
from semrouter.cache.learned_verify import VerifierModelError
from semrouter.cache.verify import _NEGATIONS, _STOP, _TOKEN, _number, _stem, vocabulary_words

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


class Swap(NamedTuple):
    """A one-run substitution between a new and a cached prompt (`substituted`)."""

    new: str  # the new prompt's differing run ("MySQL")
    cached: str  # the cached prompt's ("PostgreSQL")
    refused: bool  # no near-synonym exception: a run names something (`named`), the runs' function words that
    # say what is asked differ (`meant_differs`: to / from, his / her, why / what), or a caller's signal said no


def substituted(query: str, cached: str, max_words: int, common: frozenset[str] | None = None) -> Swap | None:
    """The two differing runs ("MySQL", "PostgreSQL") when the prompts differ in one run of 1..`max_words` words
    each, everything else equal, and the swap is not answer-neutral (`neutral_swap` with `common`); else None.
    `refused` is set when either run names something (`named`) or their relation, question, scope or pronoun words
    differ (`meant_differs`): never a near-synonym."""
    x, y = differing_window(query, cached, 0)
    wx, wy = x.split(), y.split()
    if not (1 <= len(wx) <= max_words and 1 <= len(wy) <= max_words) or neutral_swap(wx, wy, common):
        return None
    words = query.split()
    start = next((i for i in range(len(words) - len(wx) + 1) if words[i:i + len(wx)] == wx), 0)
    before = words[start - 1] if start else ""
    return Swap(x.strip(_PUNCT), y.strip(_PUNCT), named(wx, before) or named(wy, before) or meant_differs(wx, wy))


def named(run: Sequence[str], before: str) -> bool:
    """Whether a run of words names something: a word with a capital after its first letter ("PostgreSQL", "GET",
    "iOS") or capitalised where a sentence does not start (`before`: the word preceding the run, "" at the start)."""
    for i, w in enumerate(run):
        core = w.strip(_PUNCT)
        prev = run[i - 1] if i else before
        if any(c.isupper() for c in core[1:]) or (core[:1].isupper() and core != "I" and prev
                                                   and not prev.endswith((".", "?", "!", ":"))):
            return True
    return False


def meant_differs(a: Sequence[str], b: Sequence[str]) -> bool:
    """Whether two differing runs of words (split on whitespace) hold different relation, direction, negation, scope,
    question or pronoun words (`_MEANT`, case-insensitive): "to a" / "from a", "his" / "her", "Why" / "What",
    "more" / "less". The near-synonym exception judges a swap by the cosine of its two runs alone and the
    cross-encoder's score of them; both rate such function words alike (MiniLM "to" / "from" passes 0.6 / 0.7), so
    "move files to a usb drive" was served the answer for "from a usb drive". Such a swap is never a near-synonym."""
    def meant(run: Sequence[str]) -> set[str]:
        return {w for w in _TOKEN.findall(" ".join(run).lower()) if w in _MEANT}

    return meant(a) != meant(b)


def is_substitution(query: str, cached: str, max_words: int, common: frozenset[str] | None = None) -> bool:
    """Whether the prompts differ in one run of 1..`max_words` words each, everything else equal, and not by an
    answer-neutral swap (`neutral_swap`: a one-letter typo, case, an inflection, shorthand, function words):
    "... stored in PostgreSQL ..." vs "... in MySQL ..."."""
    return substituted(query, cached, max_words, common) is not None


def neutral_swap(a: Sequence[str], b: Sequence[str], common: frozenset[str] | None = None) -> bool:
    """Whether two differing runs of words (split on whitespace) cannot change what is asked: the same words up to
    case, punctuation, chat shorthand and a plural/possessive ending ("Python" / "python?", "u" / "you", "file" /
    "files"), one-letter typos of 5+-letter words ("recieve" / "receive"; not two words both in `common`, the
    vocabulary: "horse" / "house"), and function, politeness and intensifier
    words ("please" / "kindly", "very" / "really"; equivalent.py's filler and verify.py's stop words, except the
    negation, scope and relation words that equivalent.py counts as content, question words and pronouns: "to" /
    "from", "what" / "why", "his" / "her" are no neutral swaps)."""
    def alike(x: list[str], y: list[str]) -> bool:
        return len(x) == len(y) and all(u == v or _typo(u, v, common) or _stem_like(u, v, common) or _same_number(u, v)
                                        for u, v in zip(x, y, strict=True))

    x, y = _content_run(a), _content_run(b)
    return x == y or alike(x, y) or alike([w.lower().strip(_PUNCT) for w in a], [w.lower().strip(_PUNCT) for w in b])


def _typo(a: str, b: str, common: frozenset[str] | None) -> bool:
    """A one-letter typo (equivalent._one_edit), also of 3-4-letter words when one of the two is not in `common`
    ("wans" / "wants"; "cat" / "car" are two words)."""
    if _one_edit(a, b, common):
        return True
    if common is None or min(len(a), len(b)) < 3 or (a in common and b in common):
        return False
    return _one_edit(a + "xx", b + "xx") if a[-1] == b[-1] else _one_edit("xx" + a, "xx" + b)


_PUNCT = ".,;:?!\"'()"
_INTENSIFIERS = frozenset("very really quite extremely pretty super highly truly totally so too".split())
# stop words that still say what is asked about or whose: kept as content in a differing run
_MEANT = frozenset("what why how when where who whom whose which i me my we our you your he him his she her they "
                   "them their it its".split()) | _NEGATIONS | _DIRECTED | (_SCOPE - _INTENSIFIERS)


def _content_run(words: Sequence[str]) -> list[str]:
    text = _SHORT_RE.sub(lambda m: _SHORTHAND[m.group(1).lower()], " ".join(words))
    return [w for w in map(_stem, _TOKEN.findall(text)) if w in _MEANT or not (
        w in _STOP or w in _FILLER or w in _INTENSIFIERS)]


def _stem_like(a: str, b: str, common: frozenset[str] | None = None) -> bool:
    """An inflection of one stem: one word is the other plus -ed, -ing, -ly, -es, -s or -d ("sort" / "sorted"), or
    both are forms of one verb whose base is a word of `common` (without it: 4+ letters; `_verb_bases`: "ties" /
    "tying", "chops" / "chopping", "used" / "using"; "bring" / "bred" share no word)."""
    s, t = (a, b) if len(a) <= len(b) else (b, a)
    return len(s) >= 3 and t.startswith(s) and t[len(s):] in _ENDINGS or (
        len(s) >= 4 and s.endswith("e") and t.startswith(s[:-1]) and t[len(s) - 1:] in _ENDINGS) or (
        a[:1] == b[:1] != "" and any(x in common if common is not None else len(x) >= 4
                             for x in _verb_bases(a) & _verb_bases(b)))


_ENDINGS = frozenset({"ed", "ing", "ly", "es", "d", "s"})


def _verb_bases(w: str) -> set[str]:
    """The bases (3+ letters) a word of one of the regular English verb forms could come from: -s, -es, -ies,
    -ed, -ied, -ing, -ying, with a dropped e or a doubled consonant ("tying" -> tie, "chopping" -> chop)."""
    out = {w}
    for end, adds in (("ying", ("ie", "y")), ("ies", ("y", "ie")), ("ied", ("y",)), ("ing", ("", "e")),
                      ("es", ("", "e")), ("ed", ("", "e")), ("s", ("",))):
        if w.endswith(end) and len(w) > len(end):
            base = w[:-len(end)]
            out |= {base + x for x in adds}
            if end in ("ing", "ed") and len(base) >= 4 and base[-1] == base[-2]:
                out.add(base[:-1])  # chopp-ing -> chop
    return {b for b in out if len(b) >= 3}


def _same_number(a: str, b: str) -> bool:
    """The same number written two ways ("10" / "ten", "3rd" / "third")."""
    x = _number(a) if a and b else None
    return x is not None and x == _number(b)


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
                 long_substitution_words: int = 0, short_substitution_words: int = 0,
                 synonym_score: float | None = None) -> None:
        """`tokenizer_path`: default the sidecar's `tokenizer` next to the model. `long_substitution_words`: a pair
        longer than the sidecar's training `max_len` tokens whose prompts differ in one run of at most this many
        words each, not answer-neutral (`substituted`), scores 0 without a run (0 = off);
        `short_substitution_words`: the same for pairs of at most `max_len` tokens. `synonym_score`: a substitution
        not `refused` is scored as usual when the model scores its two runs alone at least this (a near-synonym:
        "quick" / "fast"; None: every substitution scores 0). Raises VerifierModelError
        when the model, its sidecar or the tokenizer is missing, or the model is not a cross-encoder."""
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
        self.short_substitution_words = short_substitution_words
        self.synonym_score = synonym_score
        self._common = vocabulary_words(tok)
        self.thresholds: dict[str, float] = dict(meta.get("chosen_on_validation") or {})
        self._tok = PairTokenizer(tok, self.max_len_served)
        self.runs = 0  # ONNX runs so far (read by tests)

    def score(self, query: str, cached: Sequence[str], swaps: Sequence[Swap | None] | None = None) -> np.ndarray:
        """P(same answer) of (query, cached[i]) for each i: float32 [len(cached)], one batched run (blocking).
        A pair longer than `max_len_served` tokens, or a refused substitution, scores 0 (`score_pairs`)."""
        return self.score_pairs([query] * len(cached), cached, swaps)

    def score_pairs(self, news: Sequence[str], cached: Sequence[str],
                    swaps: Sequence[Swap | None] | None = None) -> np.ndarray:
        """P(same answer) of (news[i], cached[i]): float32 [B], one run over the pairs of at most
        `max_len_served` tokens (none when no pair fits; the others score 0). `swaps[i]` (default: `substitutions`)
        a substitution: 0 without a run when `refused` or without `synonym_score`; else its two runs alone are
        scored in the same run, and under `synonym_score` the pair scores 0. The benchmark scores many pairs."""
        out = np.zeros(len(cached), dtype=np.float32)
        if not cached:
            return out
        lengths = self._tok.lengths(list(news), list(cached))
        # pairs over max_len_served score 0 without a run: a batch of them cost a full max_len_served-token run
        # per pair (~120 ms for three on a loaded 2-core machine) for a known 0, and padded shorter pairs to it
        ok = lengths <= self.max_len_served
        swaps = self._substitutions(news, cached, lengths) if swaps is None else swaps
        check = self.synonym_score is not None
        ok &= np.array([s is None or (check and not s.refused) for s in swaps], dtype=bool)
        fits = np.flatnonzero(ok)
        if not len(fits):
            return out
        runs = [i for i in fits if swaps[i] is not None]  # near-synonym candidates: their runs alone too
        firsts = [news[i] for i in fits] + [swaps[i].new for i in runs]  # type: ignore[union-attr]
        seconds = [cached[i] for i in fits] + [swaps[i].cached for i in runs]  # type: ignore[union-attr]
        ids, mask, types = self._tok(firsts, seconds)
        (probs,) = self._sess.run(["probs"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
        self.runs += 1
        out[fits] = probs[:len(fits), 1].astype(np.float32)
        for i, p in zip(runs, probs[len(fits):, 1], strict=True):
            if p < self.synonym_score:  # type: ignore[operator]
                out[i] = 0.0
        return out

    def long_pairs(self, query: str, cached: Sequence[str]) -> np.ndarray:
        """Whether each (query, cached[i]) is longer than the training `max_len` tokens: bool [len(cached)]
        (blocking: tokenises the pairs; cache.cross_threshold_long applies to those)."""
        return self.long_pairs_of([query] * len(cached), cached)

    def long_pairs_of(self, news: Sequence[str], cached: Sequence[str]) -> np.ndarray:
        """`long_pairs` of (news[i], cached[i]): bool [len(cached)] (the benchmarks score many pairs)."""
        if not cached:
            return np.zeros(0, dtype=bool)
        return self._tok.lengths(list(news), list(cached)) > self.max_len_trained

    def substitutions(self, query: str, cached: Sequence[str]) -> list[Swap | None]:
        """Per candidate, the substitution (`substituted`: query's run, cached's run) the settings look at, within
        `long_substitution_words` / `short_substitution_words` by the pair's length against the training length,
        else None (blocking: tokenises the pairs)."""
        if not (self.long_substitution_words or self.short_substitution_words):
            return [None] * len(cached)
        news = [query] * len(cached)
        return self._substitutions(news, cached, self._tok.lengths(news, list(cached)))

    def _substitutions(self, news: Sequence[str], cached: Sequence[str], lengths: np.ndarray) -> list[Swap | None]:
        out: list[Swap | None] = []
        for n, a, b in zip(lengths, news, cached, strict=True):
            words = self.long_substitution_words if n > self.max_len_trained else self.short_substitution_words
            out.append(substituted(a, b, words, self._common) if words else None)
        return out
