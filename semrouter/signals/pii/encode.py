"""Token embeddings from the ONNX encoder, for tests, benchmarks and head training.

Production gets these from the Analyzer's single encoder pass; this helper does the same thing
standalone: tokenizers (explicit: no fixed padding, truncation to 256) + onnxruntime.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

MAX_TOKENS = 256


def load_tokenizer(path: str | Path, max_tokens: int = MAX_TOKENS) -> Tokenizer:
    """The encoder's tokenizer with explicit settings: truncate to `max_tokens`, pad to batch longest."""
    tok = Tokenizer.from_file(str(path))
    tok.no_padding()
    tok.enable_truncation(max_length=max_tokens)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")  # length=None: pad to the longest in the batch
    return tok


class TokenEmbedder:
    """Runs `encoder(.int8).onnx` and returns per-token embeddings with character offsets."""

    def __init__(self, session: ort.InferenceSession, tokenizer: Tokenizer) -> None:
        self._session = session
        self._tokenizer = tokenizer

    @classmethod
    def load(cls, model_dir: str | Path, *, int8: bool = True, threads: int = 1) -> TokenEmbedder:
        model_dir = Path(model_dir)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        name = "encoder.int8.onnx" if int8 else "encoder.onnx"
        session = ort.InferenceSession(str(model_dir / name), opts, providers=["CPUExecutionProvider"])
        return cls(session, load_tokenizer(model_dir / "tokenizer.json"))

    def embed_batch(self, texts: Sequence[str]) -> list[tuple[np.ndarray, list[tuple[int, int]]]]:
        """Per text: (token_embeddings [T,384] float32 without padding, offsets per token)."""
        encs = self._tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encs], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encs], dtype=np.int64)
        (tokens,) = self._session.run(["token_embeddings"], {"input_ids": ids, "attention_mask": mask})
        out: list[tuple[np.ndarray, list[tuple[int, int]]]] = []
        for i, enc in enumerate(encs):
            n = int(mask[i].sum())
            out.append((np.ascontiguousarray(tokens[i, :n], dtype=np.float32), list(enc.offsets[:n])))
        return out

    def embed(self, text: str) -> tuple[np.ndarray, list[tuple[int, int]]]:
        """(token_embeddings [T,384], offsets) for one text; special tokens have offsets (0, 0)."""
        return self.embed_batch([text])[0]
