"""Cache keys: the exact stage is exact where it must be; the scope holds everything that changes the answer."""

from __future__ import annotations

from typing import Any

import pytest

from semrouter.cache.config import CacheConfig
from semrouter.cache.keys import ANSWER_NEUTRAL, CHAT_COMPLETIONS, SCOPE_FIELDS, make_key, prompt_hash
from semrouter.cache.verbatim import verbatim_differs, verbatim_parts
from semrouter.request.parse import ChatRequest

CFG = CacheConfig(enabled=True)

# Every request field of OpenAI's chat-completions API (create a chat completion), as documented.
CHAT_COMPLETIONS_FIELDS = (
    "messages", "model", "audio", "frequency_penalty", "function_call", "functions", "logit_bias", "logprobs",
    "max_completion_tokens", "max_tokens", "metadata", "modalities", "n", "parallel_tool_calls", "prediction",
    "presence_penalty", "prompt_cache_key", "reasoning_effort", "response_format", "safety_identifier", "seed",
    "service_tier", "stop", "store", "stream", "stream_options", "temperature", "tool_choice", "tools",
    "top_logprobs", "top_p", "user", "verbosity", "web_search_options",
)


def key(messages: list[dict[str, Any]] | str, **body: Any) -> Any:
    msgs = [{"role": "user", "content": messages}] if isinstance(messages, str) else messages
    b = {"model": "m", "messages": msgs, **body}
    return make_key(CFG, ChatRequest(b, "m", tuple(msgs), bool(b.get("stream"))), {})


def test_every_chat_completions_field_is_scoped_or_listed_neutral() -> None:
    scoped, neutral = SCOPE_FIELDS[CHAT_COMPLETIONS], ANSWER_NEUTRAL[CHAT_COMPLETIONS]
    assert not set(scoped) & set(neutral)
    missing = [f for f in CHAT_COMPLETIONS_FIELDS if f not in scoped and f not in neutral]
    assert not missing, f"decide for each: scope (SCOPE_FIELDS) or answer-neutral with a reason: {missing}"
    assert all(reason.strip() for reason in (*scoped.values(), *neutral.values()))


@pytest.mark.parametrize("field,a,b", [
    ("tools", [{"type": "function", "function": {"name": "f"}}], [{"type": "function", "function": {"name": "g"}}]),
    ("tool_choice", "auto", "none"), ("response_format", {"type": "json_object"}, {"type": "text"}),
    ("max_tokens", 10, 20), ("max_completion_tokens", 10, 20), ("stop", ["\n"], ["."]), ("seed", 1, 2),
    ("frequency_penalty", 0.0, 1.0), ("presence_penalty", 0.0, 1.0), ("logit_bias", {"1": 5}, {"1": -5}),
    ("reasoning_effort", "low", "high"), ("verbosity", "low", "high"), ("some_vendor_field", 1, 2),
])
def test_answer_changing_fields_separate_the_scope(field: str, a: Any, b: Any) -> None:
    assert key("hello there", **{field: a}).scope != key("hello there", **{field: b}).scope
    assert key("hello there", **{field: a}).scope != key("hello there").scope


@pytest.mark.parametrize("field,value", [("stream", True), ("user", "u1"), ("metadata", {"k": "v"}),
                                         ("store", True), ("service_tier", "flex"), ("temperature", 0.2)])
def test_answer_neutral_fields_share_the_scope(field: str, value: Any) -> None:
    assert key("hello there", **{field: value}).scope == key("hello there").scope


def test_system_developer_and_every_content_part_are_in_the_scope() -> None:
    base = key("describe it")
    sysmsg = key([{"role": "system", "content": "be brief"}, {"role": "user", "content": "describe it"}])
    dev = key([{"role": "developer", "content": "be brief"}, {"role": "user", "content": "describe it"}])
    assert len({base.scope, sysmsg.scope, dev.scope}) == 3

    def parts(*extra: dict[str, Any]) -> Any:
        return key([{"role": "user", "content": [{"type": "text", "text": "describe it"}, *extra]}])

    img1 = parts({"type": "image_url", "image_url": {"url": "https://x.invalid/a.png"}})
    img2 = parts({"type": "image_url", "image_url": {"url": "https://x.invalid/b.png"}})
    data = parts({"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}})
    audio = parts({"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}})
    file = parts({"type": "file", "file": {"file_id": "file-1"}})
    scopes = [base.scope, img1.scope, img2.scope, data.scope, audio.scope, file.scope]
    assert len(set(scopes)) == len(scopes)
    assert all(k.prompt == "describe it" for k in (img1, img2, data, audio, file))
    assert parts().scope == base.scope  # text-only parts == a plain string


def test_opt_outs() -> None:
    assert key("hi there", n=2) is None and key("hi there", logprobs=True) is None
    assert key("hi there", top_logprobs=2) is None and key("hi there", temperature=1.5) is None


@pytest.mark.parametrize("a,b", [
    ("Translate the word 'May' into French", "Translate the word 'may' into French"),
    ("What does HTTP 'GET' mean?", "what does http 'get' mean?"),
    ("Is US in Europe?", "is us in europe?"),
    ("def f():\n    return 1\n", "def f():\n  return 1\n"),
    ("Explain `a  =  b`", "Explain `a = b`"),
    ('Summarise "the  quick fox"', 'Summarise "the quick fox"'),
    ("x = 2²", "x = 22"),
])
def test_exact_stage_keeps_what_changes_the_answer(a: str, b: str) -> None:
    assert prompt_hash(a) != prompt_hash(b)


@pytest.mark.parametrize("a,b", [
    ("What is the capital of France?", "  What is the capital of France?\n"),
    ("What is   the capital of France?", "What is the capital of France?"),
    ("line one\r\nline two", "line one\nline two"),
    ("caf\u0065\u0301 menu", "caf\u00e9 menu"),
])
def test_exact_stage_normalises_what_cannot(a: str, b: str) -> None:
    assert prompt_hash(a) == prompt_hash(b)


def test_verbatim_parts() -> None:
    assert verbatim_parts("Fix ```py\nx=1\n``` and `y` then say \"hi\" and 'May'") == (
        "```py\nx=1\n```", "`y`", '"hi"', "'May'")
    assert verbatim_parts("it's what you're doing") == ()
    assert verbatim_differs("What does `a+b` do?", "What does `a-b` do?")
    assert not verbatim_differs("hi, what does `a+b` do?", "What does `a+b` do, please?")
    # the quoted characters count, not which quote marks hold them; code keeps its own
    assert not verbatim_differs("Why does the sign say 'no entry' here?", 'Why does the sign say "no entry" here?')
    assert not verbatim_differs("Translate \u201cgood night\u201d", 'Translate "good night"')
    assert verbatim_differs("Translate 'May' into French", 'Translate "may" into French')
    assert verbatim_differs("Translate 'May' into French", "Translate May into French")
    assert verbatim_differs("What does `x` print?", "What does 'x' print?")


@pytest.mark.parametrize("a,b,same", [
    ("What are the main renewable energy sources?", "What are the main renewable enrgy sources?", True),
    ("What are the main renewable energy sources?", "Hi! What are the main renewable energy sources? Thanks!", True),
    ("How do I reverse a list in Python?", "in python, how do i reverse a list", True),
    ("Please explain how you sort a list with Python", "pls explain how u sort a list w/ python", True),
    ("Explain recursion.", "Can you explain recursion?", True),
    ("dog bites man", "man bites dog", False),
    ("Is coffee bad for you?", "Is coffee not bad for you?", False),
    ("What is the capital of France?", "What is the capital of Spain?", False),
    ("Convert 5 miles to km", "Convert 8 miles to km", False),
    ("What are the main renewable energy sources?", "What are the main renewable energy sinks?", False),
    ("List all files in the folder", "List all files in the folder in Europe", False),
    ("List all files in the folder", "List some files in the folder", False),
    ("Does Emil admire Anna?", "Does Anna admire Emil?", False),
    ("Which isomer of C6H14 has five shifts?", "Which isomer of C16H14 has five shifts?", False),
    # relation words keep their place: swapped direction is no rewording, a moved phrase may carry one
    ("Convert miles to kilometers", "Convert kilometers miles to", False),
    ("The patient most likely suffers from which disorder?", "The patient most likely which from suffers disorder?",
     False),
    ("Copy the file from the server to my laptop", "Copy the file to the server from my laptop", False),
    ("For beginners, how do I learn chess openings?", "How do I learn chess openings for beginners?", True),
    ("How do I center a div with flexbox?", "Using flexbox, how do I center a div?", True),
    ("Could you help me with sorting a list in Python?", "sorting a list in Python", True),
    # another question word or person asks another question, although both are on the stop list
    ("Why is the sky blue?", "What is the sky blue?", False),
    ("When did the siege of the old harbour town end?", "Where did the siege of the old harbour town end?", False),
    ("How old was his grandfather when the mill closed?", "How old was her grandfather when the mill closed?", False),
    ("pls tell me why the sky is blue", "Why is the sky blue?", True),
])
def test_answer_neutral_rewordings(a: str, b: str, same: bool) -> None:
    from semrouter.cache.equivalent import equivalent

    assert equivalent(a, b) is same and equivalent(b, a) is same


def test_a_one_letter_change_between_common_words_is_no_typo() -> None:
    from semrouter.cache.equivalent import equivalent

    common = frozenset({"horse", "house", "large"})
    assert not equivalent("How large is a horse?", "How large is a house?", common)
    assert equivalent("How large is a horse?", "How large is a hoorse?", common)
