"""Deterministic helpers for tests and demos: a hashed bag-of-words embedder and answer builders."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from semrouter.request.parse import ChatRequest

if TYPE_CHECKING:
    from semrouter.cache.semantic import SemanticCache

_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset("a an the is are do does i to of in on for how what can me my you your please".split())


class HashEmbedder:
    """Bag of words hashed into `dim` buckets (stop words dropped), L2-normalised.

    Texts sharing most content words are close; it is fast, deterministic and needs no model.
    """

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim
        self.calls = 0

    def vector(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        for w in _WORD.findall(text.lower()):
            if w in _STOP:
                continue
            h = int.from_bytes(hashlib.blake2b(w.encode(), digest_size=8).digest(), "little")
            v[h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
        n = float(np.linalg.norm(v))
        if n == 0:
            v[0] = 1.0
            return v
        return v / n

    async def __call__(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        return np.stack([self.vector(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)


def completion(content: str, model: str = "m1", finish_reason: str = "stop",
               usage: dict[str, int] | None = None) -> bytes:
    obj: dict[str, Any] = {
        "id": "chatcmpl-up", "object": "chat.completion", "created": 1, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                     "finish_reason": finish_reason}],
    }
    if usage is not None:
        obj["usage"] = usage
    return json.dumps(obj).encode()


def sse_stream(pieces: Sequence[str], model: str = "m1", finish_reason: str | None = "stop", done: bool = True,
               usage: dict[str, int] | None = None) -> bytes:
    base = {"id": "chatcmpl-up", "object": "chat.completion.chunk", "created": 1, "model": model}
    events = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                    "finish_reason": None}]}]
    events += [{**base, "choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]} for p in pieces]
    if finish_reason is not None:
        events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish_reason}]})
    if usage is not None:
        events.append({**base, "choices": [], "usage": usage})
    out = "".join(f"data: {json.dumps(e)}\n\n" for e in events)
    if done:
        out += "data: [DONE]\n\n"
    return out.encode()


def parse_sse(body: bytes) -> tuple[list[dict[str, Any]], bool]:
    """Events of an SSE body and whether it ended with [DONE] (strict: each event one data line)."""
    text = body.decode()
    assert text.endswith("\n\n"), "SSE must end with a blank line"
    events: list[dict[str, Any]] = []
    done = False
    for block in text[:-2].split("\n\n"):
        assert block.startswith("data: "), block
        assert not done, "event after [DONE]"
        data = block[len("data: "):]
        if data == "[DONE]":
            done = True
        else:
            events.append(json.loads(data))
    return events, done


def user_request(text: str, model: str = "m1") -> ChatRequest:
    """A chat request whose only message is the user's `text`, for `model` (the shape the cache keys)."""
    messages = ({"role": "user", "content": text},)
    return ChatRequest(body={"model": model, "messages": list(messages)}, model=model, messages=messages, stream=False)


async def put_answer(cache: SemanticCache, text: str, headers: Mapping[str, str], answer: str = "answer") -> None:
    """Store `answer` for `user_request(text)` from a client with `headers` and wait until it is stored."""
    key = cache.key_for(user_request(text), headers)
    assert key is not None, "not cacheable"
    cache.store_in_background(key, None, 200, "application/json", completion(answer), has_pii=False)
    await cache.flush()

