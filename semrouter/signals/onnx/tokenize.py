"""Tokenisation for the encoders: explicit padding and head+tail truncation over one of two tokenizers.

`TextTokenizer` (MiniLM's word pieces, a `tokenizers` tokenizer.json, one call per batch) and `UnigramTokenizer`
(the multilingual encoder's 250,002 XLM-R pieces as a SentencePiece model: the `tokenizers` Unigram model held
~281 MB per process for its trie, SentencePiece ~58 MB) give the same `TokenBatch`.

Long prompts never error. When a text has more than `max_tokens` tokens (specials included), the
HEAD and the TAIL are kept: the first ceil(budget/2) and the last floor(budget/2) content tokens,
where budget = max_tokens - 2 ([CLS] and [SEP]). With the default 256 that is the first 127 and the
last 127 word pieces. The beginning of a prompt usually states the task and the end usually holds the
actual question, so both survive; the middle (pasted documents, logs) is what gets dropped.
Offsets stay the character spans of the kept tokens in the original text, (0, 0) for specials.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer


@dataclass(frozen=True, slots=True)
class TokenBatch:
    """A padded batch: `input_ids`/`attention_mask` int64 [B,T]; per text its kept token offsets."""

    input_ids: np.ndarray
    attention_mask: np.ndarray
    offsets: list[list[tuple[int, int]]]  # without padding; len == real length of the row
    truncated: list[bool]

    @property
    def lengths(self) -> list[int]:
        return [len(o) for o in self.offsets]

    def select(self, rows: Sequence[int]) -> TokenBatch:
        """The batch of these rows only (in this order), its padding cut to their longest row."""
        width = max((len(self.offsets[i]) for i in rows), default=0)
        idx = list(rows)
        return TokenBatch(input_ids=self.input_ids[idx, :width], attention_mask=self.attention_mask[idx, :width],
                          offsets=[self.offsets[i] for i in idx], truncated=[self.truncated[i] for i in idx])


class TextTokenizer:
    """Wraps a `tokenizer.json` (BERT word pieces by default; `specials` names the start, end and padding tokens
    of another vocabulary, e.g. ("<s>", "</s>", "<pad>") for the multilingual encoder's). Stateless after
    construction; thread-safe."""

    def __init__(self, path: str | Path, max_tokens: int = 256,
                 specials: tuple[str, str, str] = ("[CLS]", "[SEP]", "[PAD]")) -> None:
        if max_tokens < 8:
            raise ValueError("max_tokens must be at least 8")
        self._tok = Tokenizer.from_file(str(path))
        self._tok.no_truncation()
        self._tok.no_padding()
        self.max_tokens = max_tokens
        self.cls_id = self._require(specials[0])
        self.sep_id = self._require(specials[1])
        self.pad_id = self._tok.token_to_id(specials[2]) or 0
        self.vocab_size = int(self._tok.get_vocab_size(with_added_tokens=True))

    def _require(self, token: str) -> int:
        tid = self._tok.token_to_id(token)
        if tid is None:
            raise ValueError(f"tokenizer has no {token} token")
        return tid

    def content_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Every word piece of each text, untruncated and without [CLS]/[SEP]."""
        return [list(e.ids) for e in self._tok.encode_batch(list(texts), add_special_tokens=False)]

    def encode(self, texts: Sequence[str]) -> TokenBatch:
        """Tokenise a batch; rows are padded to the longest kept length."""
        encs = self._tok.encode_batch(list(texts), add_special_tokens=False)
        return pack([e.ids for e in encs], [e.offsets for e in encs], self.max_tokens, self.cls_id, self.sep_id,
                    self.pad_id)


def pack(ids: Sequence[Sequence[int]], offsets: Sequence[Sequence[tuple[int, int]]], max_tokens: int, cls_id: int,
         sep_id: int, pad_id: int) -> TokenBatch:
    """Content ids and their offsets per text -> a padded `TokenBatch`: [CLS] + head + tail + [SEP] (module doc)."""
    budget = max_tokens - 2
    head = (budget + 1) // 2
    tail = budget - head
    rows: list[list[int]] = []
    kept: list[list[tuple[int, int]]] = []
    truncated: list[bool] = []
    for row_ids, offs in zip(ids, offsets, strict=True):
        row, off = list(row_ids), list(offs)
        cut = len(row) > budget
        if cut:
            row = row[:head] + row[len(row) - tail :]
            off = off[:head] + off[len(off) - tail :]
        rows.append([cls_id, *row, sep_id])
        kept.append([(0, 0), *[(int(a), int(b)) for a, b in off], (0, 0)])
        truncated.append(cut)
    width = max(len(r) for r in rows) if rows else 0
    input_ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, r in enumerate(rows):
        input_ids[i, : len(r)] = r
        mask[i, : len(r)] = 1
    return TokenBatch(input_ids=input_ids, attention_mask=mask, offsets=kept, truncated=truncated)


# The multilingual encoder's normaliser (the one its `tokenizers` export used, modelbuild/export_e5.py): control
# characters removed, white space made plain spaces, NFKC, runs of spaces collapsed. SentencePiece then splits at
# spaces and prepends "▁" to every word (its own normaliser is the identity).
CONTROL = "[\u0000-\u0008\u000b\u000e-\u001f\u007f-\u009f\u00ad\u200b-\u200d\u2060\ufeff\ufff9-\ufffb]"
SPACES = "[\t\n\r\u000c\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
_CONTROL_RE, _SPACES_RE, _RUNS_RE = re.compile(CONTROL), re.compile(SPACES), re.compile(" {2,}")


class Normaliser:
    """str -> the normalised str the unigram pieces are matched against. `keep` maps the code points whose NFKC
    form changed in this Python's Unicode tables after the version the model's tokenizer was made with (e.g.
    U+32FF, Unicode 12.1) to what that tokenizer gave them (themselves): they are cut out before NFKC and put
    back after, so the ids stay the ones the model was exported and checked with. Stateless; thread-safe."""

    def __init__(self, keep: dict[int, str] | None = None) -> None:
        self._keep = dict(keep or {})
        self._keep_re = re.compile("([" + "".join(re.escape(chr(c)) for c in sorted(self._keep)) + "])") \
            if self._keep else None

    @classmethod
    def load(cls, path: str | Path) -> Normaliser:
        """From a `tokenizer.nfkc.json` ({"keep": {"<code point>": "<replacement>"}}). Raises ValueError when the
        file is not one (rebuild it with `make models`)."""
        try:
            data = json.loads(Path(path).read_text())
            return cls({int(k): str(v) for k, v in data["keep"].items()})
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"{path}: not a normaliser file ({e}); rebuild it with `make models`") from e

    def __call__(self, text: str) -> str:
        t = _SPACES_RE.sub(" ", _CONTROL_RE.sub("", text))
        if self._keep_re is None or not self._keep_re.search(t):
            t = unicodedata.normalize("NFKC", t)
        else:
            parts = self._keep_re.split(t)  # odd indices: kept code points
            t = "".join(self._keep[ord(p)] if i % 2 else unicodedata.normalize("NFKC", p)
                        for i, p in enumerate(parts))
        return _RUNS_RE.sub(" ", t)


class UnigramTokenizer:
    """The multilingual encoder's tokenizer: a SentencePiece unigram model (`tokenizer.model`: XLM-R's pieces and
    scores, <s>=0, <pad>=1, </s>=2, <unk>=3 as control pieces) behind `Normaliser`. Same `encode` as
    `TextTokenizer` (head+tail truncation, padding), except that offsets are not tracked: every offset is (0, 0)
    (the multilingual pass reads ids only). Control pieces never come from text: a literal "<s>" in a prompt is
    the pieces of "<", "s", ">". Stateless after construction; thread-safe."""

    def __init__(self, model: str | Path, normaliser: Normaliser, max_tokens: int = 256) -> None:
        """Raises ValueError when `max_tokens` < 8 or the model lacks <s>, </s> or <pad>; OSError when unreadable."""
        import sentencepiece

        if max_tokens < 8:
            raise ValueError("max_tokens must be at least 8")
        if not Path(model).is_file():
            raise OSError(f"{model}: no such file")
        self._sp = sentencepiece.SentencePieceProcessor(model_file=str(model))
        self.normalise = normaliser
        self.max_tokens = max_tokens
        self.cls_id, self.sep_id, self.pad_id = (int(self._sp.bos_id()), int(self._sp.eos_id()),
                                                 int(self._sp.pad_id()))
        if min(self.cls_id, self.sep_id, self.pad_id) < 0:
            raise ValueError(f"{model}: the model lacks a start, end or padding piece")
        self.vocab_size = int(self._sp.get_piece_size())

    def piece_id(self, piece: str) -> int | None:
        """The id of `piece` (None when the vocabulary lacks it)."""
        i = int(self._sp.piece_to_id(piece))
        return None if i == self._sp.unk_id() and piece != self._sp.id_to_piece(i) else i

    def content_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Every piece id of each text, untruncated and without <s>/</s>."""
        return [list(self._sp.encode(self.normalise(t))) for t in texts]

    def encode(self, texts: Sequence[str]) -> TokenBatch:
        """Tokenise a batch; rows are padded to the longest kept length."""
        ids = self.content_ids(texts)
        return pack(ids, [[(0, 0)] * len(r) for r in ids], self.max_tokens, self.cls_id, self.sep_id, self.pad_id)
