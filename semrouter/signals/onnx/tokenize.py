"""Tokenisation for the encoder: one `tokenizers` call per batch, explicit padding and head+tail truncation.

Long prompts never error. When a text has more than `max_tokens` tokens (specials included), the
HEAD and the TAIL are kept: the first ceil(budget/2) and the last floor(budget/2) content tokens,
where budget = max_tokens - 2 ([CLS] and [SEP]). With the default 256 that is the first 127 and the
last 127 word pieces. The beginning of a prompt usually states the task and the end usually holds the
actual question, so both survive; the middle (pasted documents, logs) is what gets dropped.
Offsets stay the character spans of the kept tokens in the original text, (0, 0) for specials.
"""

from __future__ import annotations

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
        budget = self.max_tokens - 2
        head = (budget + 1) // 2
        tail = budget - head
        rows: list[list[int]] = []
        offsets: list[list[tuple[int, int]]] = []
        truncated: list[bool] = []
        for e in encs:
            ids, offs = e.ids, e.offsets
            cut = len(ids) > budget
            if cut:
                ids = ids[:head] + ids[len(ids) - tail :]
                offs = offs[:head] + offs[len(offs) - tail :]
            rows.append([self.cls_id, *ids, self.sep_id])
            offsets.append([(0, 0), *[(int(a), int(b)) for a, b in offs], (0, 0)])
            truncated.append(cut)
        width = max(len(r) for r in rows) if rows else 0
        input_ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, r in enumerate(rows):
            input_ids[i, : len(r)] = r
            mask[i, : len(r)] = 1
        return TokenBatch(input_ids=input_ids, attention_mask=mask, offsets=offsets, truncated=truncated)
