"""Applying a decision to the request body: model name, reasoning switch, system prompt.

Every other field is kept as the client sent it (same JSON values, `stream` included); only the
serialisation (whitespace, key order of untouched objects is preserved) may differ.
"""

from __future__ import annotations

from typing import Any

from semrouter.config.schema import Model, SystemPrompt
from semrouter.request import body_json


def rewrite_body(
    body: dict[str, Any],
    model: Model,
    use_reasoning: bool | None,
    system_prompt: SystemPrompt | None,
) -> bytes:
    """A new body for the upstream. `use_reasoning` None leaves reasoning fields untouched."""
    out = dict(body)
    out["model"] = model.name
    fam = model.reasoning_family
    if fam is not None and use_reasoning is not None:
        if fam.type == "chat_template_kwargs":
            kwargs = dict(out.get("chat_template_kwargs") or {})
            kwargs[fam.parameter] = use_reasoning
            out["chat_template_kwargs"] = kwargs
        elif use_reasoning:
            out["reasoning_effort"] = fam.effort
        else:
            out.pop("reasoning_effort", None)
    if system_prompt is not None:
        out["messages"] = _with_system_prompt(list(out.get("messages") or []), system_prompt)
    return body_json.dumps(out)


def _with_system_prompt(messages: list[dict[str, Any]], sp: SystemPrompt) -> list[dict[str, Any]]:
    injected = {"role": "system", "content": sp.text}
    if sp.mode == "replace":
        return [injected, *(m for m in messages if m.get("role") not in ("system", "developer"))]
    return [injected, *messages]
