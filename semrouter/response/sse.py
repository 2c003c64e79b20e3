"""Reading a complete Server-Sent Events body (the upstream's streamed answer, held whole by the observer).

Source: WHATWG HTML Living Standard, "Server-sent events", event stream interpretation: events are separated
by a blank line; an event's `data:` lines (one leading space dropped) are joined with "\\n".
"""

from __future__ import annotations

from collections.abc import Iterator


def event_data(text: str, last_first: bool = False) -> Iterator[str]:
    """Each event's data, as one string per event (events without `data:` lines are skipped), in stream order
    or, with `last_first`, from the last event back (a reader of the final event stops early). `text`: the
    decoded body; CRLF line endings are accepted. Never raises."""
    blocks = text.replace("\r\n", "\n").split("\n\n")
    for block in reversed(blocks) if last_first else blocks:
        data = "\n".join(line[5:].removeprefix(" ") for line in block.split("\n") if line.startswith("data:"))
        if data:
            yield data
