"""The parts of a prompt that must match character for character: code and quoted text.

A request that pastes code or quotes a phrase asks about exactly those characters: indentation
changes a Python program, `'May'` and `'may'` translate differently. Both the exact stage
(keys.normalise_prompt) and the semantic stage (a `verbatim` veto in semantic.py) use this module:

* fenced code blocks (``` ... ```, ~~~ ... ~~~), inline code (`...`);
* lines indented by a space or tab (code pasted without a fence);
* double-quoted and typographically quoted text ("...", “...”, „...“, «...», 「...」);
* single-quoted text that starts and ends at a word boundary ('May'; not the apostrophe in "it's").

The semantic stage compares quoted text without its quote marks ('May' and "May" quote the same word); the exact
stage keeps them.

Everything here is a pure function of the string (regular expressions bounded by the line or the
fence; linear in the prompt's length).
"""

from __future__ import annotations

import re

_FENCE = re.compile(r"(```|~~~)[^\n]*\n.*?(?:\1|\Z)", re.S)
_INLINE = re.compile(r"`[^`\n]+`")
_INDENTED = re.compile(r"(?<=\n)[ \t]+\S.*$", re.M)
_QUOTED = re.compile(r"\"[^\"\n]*\"|“[^”\n]*”|„[^“”\n]*[“”]|«[^»\n]*»|「[^」\n]*」"
                     r"|(?<!\w)'[^'\n]+'(?!\w)")


def verbatim_parts(text: str) -> tuple[str, ...]:
    """The code and quoted segments of `text`, in order, each exactly as written (may be empty).

    Shapes: str -> tuple of substrings of it. Fenced blocks are taken first; inline code, indented
    lines and quotes are searched in what remains."""
    out: list[str] = []
    rest: list[str] = []
    pos = 0
    for m in _FENCE.finditer(text):
        rest.append(text[pos:m.start()])
        out.append(m.group())
        pos = m.end()
    rest.append(text[pos:])
    for chunk in rest:
        out += _INLINE.findall(chunk)
        out += [m.group() for m in _INDENTED.finditer(chunk)]
        out += _QUOTED.findall(_INLINE.sub(" ", chunk))
    return tuple(out)


def has_verbatim(text: str) -> bool:
    """Whether `text` contains code or quoted text (then the exact stage compares it verbatim)."""
    return bool(verbatim_parts(text)) or "\t" in text


def verbatim_differs(a: str, b: str) -> bool:
    """True when the two prompts' code/quoted segments differ in any character (the semantic stage then
    refuses the candidate: its answer was for other code or another quotation). Quoted text is compared without
    its quote marks: 'no chance', "no chance" and “no chance” quote the same characters (code keeps its own)."""
    return tuple(map(_unquoted, verbatim_parts(a))) != tuple(map(_unquoted, verbatim_parts(b)))


_QUOTE_MARKS = "\"'“”„«»「」"


def _unquoted(part: str) -> str:
    """A quoted segment without its quote marks (the quoted characters stay exact); code as it is."""
    if len(part) >= 2 and part[0] in _QUOTE_MARKS and part[-1] in _QUOTE_MARKS:
        return part[1:-1]
    return part
