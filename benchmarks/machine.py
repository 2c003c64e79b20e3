"""One line that says which machine a benchmark ran on, for the header of every table in RESULTS.md.

    from benchmarks.machine import describe
    print(f"# bench_x: {describe()}")   # "AMD EPYC 7B13; 2 cores; load 3.1 2.9 2.5"

Reads `/proc/cpuinfo` (the CPU model; `platform.processor()` is often empty on Linux) and the 1/5/15-minute load
average, because on a shared machine a latency row means little without the load it was measured under.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name from `/proc/cpuinfo`; `platform.processor()` or the architecture where that is absent."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe() -> str:
    """`"<cpu model>; <n> cores; load <1 min> <5 min> <15 min>"` for the machine this process runs on."""
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{cpu_model()}; {os.cpu_count()} cores; load {load}"
