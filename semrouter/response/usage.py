"""Token usage from an upstream answer (JSON completion or SSE stream)."""

from __future__ import annotations

import json


def usage_from_body(content_type: str, body: bytes) -> tuple[int, int] | None:
    """(prompt_tokens, completion_tokens) when the answer reports `usage`, else None."""
    try:
        if content_type.startswith("text/event-stream"):
            for line in reversed(body.split(b"\n")):
                if line.startswith(b"data: {") and b'"usage"' in line:
                    u = json.loads(line[6:]).get("usage")
                    if u:
                        return int(u.get("prompt_tokens", 0)), int(u.get("completion_tokens", 0))
            return None
        u = json.loads(body).get("usage")
        if not u:
            return None
        return int(u.get("prompt_tokens", 0)), int(u.get("completion_tokens", 0))
    except (ValueError, AttributeError, TypeError):
        return None
