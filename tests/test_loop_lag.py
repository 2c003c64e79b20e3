"""Nothing slow on the event loop: the language detector's high-accuracy pass runs on a worker thread.

A loop-lag probe (a task that sleeps 0.5 ms over and over and records how late it wakes) runs while the request
path's language step (`signals.types.language_of`, signals off or failed) detects a prompt the fast screen is not
sure of. Before the change the pass ran inline and the probe woke as late as the whole pass took.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable

import pytest

from semrouter.signals.language import LanguageConfig, LanguageDetector
from semrouter.signals.types import language_of

# Hand-written prompts (not from any data set). The screen names Spanish, not a classifier language: second pass.
SPANISH = "¿Me puedes contar por qué el cielo se ve azul durante el día y rojo al atardecer? "
ENGLISH = "Please explain why the sky looks blue during the day and red at sunset."


async def _max_lag_ms(work: Awaitable[object]) -> tuple[float, object]:
    """(the probe's worst late wake-up in ms while `work` ran, `work`'s result)."""
    task = asyncio.ensure_future(work)
    worst = 0.0
    while not task.done():
        t0 = time.perf_counter()
        await asyncio.sleep(0.0005)
        worst = max(worst, (time.perf_counter() - t0) * 1e3 - 0.5)
    return worst, await task


class _SlowPass:
    """Wraps lingua's high-accuracy detector: records the calling thread and adds `delay_s` (GIL released, as lingua
    releases it while it scores)."""

    def __init__(self, inner: object, delay_s: float) -> None:
        self.inner, self.delay_s, self.threads = inner, delay_s, []

    def compute_language_confidence_values(self, text: str) -> list:
        self.threads.append(threading.get_ident())
        time.sleep(self.delay_s)
        return self.inner.compute_language_confidence_values(text)


@pytest.fixture(scope="module")
def detector() -> LanguageDetector:
    return LanguageDetector(LanguageConfig())


async def test_the_second_pass_never_stalls_the_loop(detector: LanguageDetector) -> None:
    slow = _SlowPass(detector._detector, 0.08)
    real, detector._detector = detector._detector, slow
    try:
        lag, code = await _max_lag_ms(language_of(detector, SPANISH, None))
    finally:
        detector._detector = real
    assert code == "es"
    assert slow.threads and threading.get_ident() not in slow.threads  # ran on a worker thread
    assert lag < 40, f"the event loop stalled {lag:.1f} ms during an 80 ms language pass"


async def test_settled_by_the_screen_no_second_pass(detector: LanguageDetector) -> None:
    slow = _SlowPass(detector._detector, 0.0)
    real, detector._detector = detector._detector, slow
    try:
        assert await language_of(detector, ENGLISH, None) == "en"
    finally:
        detector._detector = real
    assert slow.threads == []  # confident English: the fast screen's answer, no hop to the worker


async def test_the_pass_reads_at_most_max_chars(detector: LanguageDetector) -> None:
    """What bounds the stall is the window, not the thread: lingua holds the GIL for much of a pass (on a
    100,000-character text the loop was late by half the pass in one run and by all of it in a loaded one), so
    the detector reads at most `language.max_chars` (default 400, at most 10,000 by the config) characters."""
    slow = _SlowPass(detector._detector, 0.0)
    seen: list[int] = []
    inner = slow.compute_language_confidence_values

    def recording(text: str) -> list:
        seen.append(len(text))
        return inner(text)

    slow.compute_language_confidence_values = recording  # type: ignore[method-assign]
    real, detector._detector = detector._detector, slow
    try:
        assert await language_of(detector, SPANISH * 500, None) == "es"
    finally:
        detector._detector = real
    assert seen == [LanguageConfig().max_chars] and LanguageConfig().max_chars == 400
    with pytest.raises(ValueError):
        LanguageConfig(max_chars=10_001)


async def test_cancelled_caller_leaves_the_worker_usable(detector: LanguageDetector) -> None:
    slow = _SlowPass(detector._detector, 0.05)
    real, detector._detector = detector._detector, slow
    try:
        task = asyncio.ensure_future(language_of(detector, SPANISH, None))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await language_of(detector, SPANISH, None) == "es"  # the next request still gets its answer
    finally:
        detector._detector = real
