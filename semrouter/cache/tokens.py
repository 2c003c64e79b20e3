"""Token states of prompts for the alignment features (align.py): the shipped encoder's `token_embeddings`.

The learned verifier needs the token states of both prompts of a pair it scores with alignment features.
`TokenStates` owns one ONNX Runtime session of the encoder file and its tokenizer (the same files the
signals use, so the states are the ones the model was trained on; training uses this class too):

    TokenStates(model, tokenizer)(texts) -> [(states float32 [T,384], content bool [T]) per text]

Special and padding tokens are dropped; texts are truncated to MAX_TOKENS tokens and padded to the
longest of the batch. Raises onnxruntime's errors for an unreadable model file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from semrouter.cache.align import content_mask

MAX_TOKENS = 128


class TokenStates:
    """Token states and content masks with one encoder session (`threads` intra-op threads)."""

    def __init__(self, model: str | Path, tokenizer: str | Path, threads: int = 1) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        from semrouter.signals.onnx.sessions import session_options

        self._sess = ort.InferenceSession(str(model), session_options(threads), providers=["CPUExecutionProvider"])
        self._tok = Tokenizer.from_file(str(tokenizer))
        self._tok.no_padding()
        self._tok.no_truncation()
        self._tok.enable_padding(pad_id=0, pad_token="[PAD]")
        self._tok.enable_truncation(MAX_TOKENS)
        self._type_ids = "token_type_ids" in {x.name for x in self._sess.get_inputs()}
        self.runs = 0  # encoder runs so far (read by tests)

    def __call__(self, texts: Sequence[str], batch: int = 32) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per text: (token states float32 [T,D] without special/padding tokens, content mask bool [T])."""
        out: list[tuple[np.ndarray, np.ndarray] | None] = [None] * len(texts)
        order = np.argsort([len(t) for t in texts], kind="stable")
        for i in range(0, len(texts), batch):
            idx = order[i:i + batch]
            enc = self._tok.encode_batch([texts[j] for j in idx])
            ids = np.array([e.ids for e in enc], dtype=np.int64)
            mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": mask}
            if self._type_ids:
                feeds["token_type_ids"] = np.zeros_like(ids)
            (states,) = self._sess.run(["token_embeddings"], feeds)
            self.runs += 1
            for row, j in enumerate(idx):
                e = enc[row]
                keep = np.array([w is not None for w in e.word_ids], dtype=bool) & (mask[row] == 1)
                content = content_mask(texts[j], e.offsets, e.word_ids)
                out[j] = (states[row][keep].astype(np.float32), content[keep])
        return [x for x in out if x is not None]
