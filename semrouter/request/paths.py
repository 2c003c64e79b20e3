"""The request path as the router matches it.

Envoy normalises every path before the router sees it (shipped configs: `normalize_path` removes dot
segments and decodes percent-encoded unreserved characters, `merge_slashes` folds `//`,
`path_with_escaped_slashes_action: UNESCAPE_AND_FORWARD` decodes %2F and %5C). What Envoy leaves alone,
the router folds here: letter case, trailing slashes and the query string. So `/V1/chat/completions/?x=1`
is the chat path and gets every check; it is never a variant that skips the router.
"""

from __future__ import annotations

from urllib.parse import unquote


def canonical_path(raw: str, fold_case: bool = True) -> str:
    """`:path` as matched: no query or fragment, percent-decoding and dot segments applied (for a router running
    behind a proxy that does not normalise), `//` folded, lower case, no trailing slash ("/" stays "/").
    `fold_case=False` keeps the letters as sent (for ids inside a path: model names, response ids)."""
    path = raw.split("?", 1)[0].split("#", 1)[0]
    path = unquote(path).replace("\\", "/")
    out: list[str] = []
    for seg in path.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if out:
                out.pop()
            continue
        out.append(seg)
    path = "/" + "/".join(out)
    return path.lower() if fold_case else path


def query_of(raw: str) -> str:
    """The query string of `:path` with its `?`, or ""."""
    _, sep, query = raw.partition("?")
    return sep + query
