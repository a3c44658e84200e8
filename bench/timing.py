"""How every benchmark times a call and summarises its samples (milliseconds).

Plain standard library: bench.py and inference.py import it from every virtualenv.
"""

from __future__ import annotations

from collections.abc import Callable

import statistics
import time


def timed(call: Callable[[], object], rounds: int, warmup: int = 2) -> dict:
    """``call`` run ``warmup`` times unmeasured, then ``rounds`` times measured."""
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000.0)
    return summary(samples)


def summary(samples: list[float]) -> dict:
    """Median, 10th and 90th percentiles of ``samples`` in milliseconds."""
    ordered = sorted(samples)
    return {
        "median_ms": statistics.median(ordered),
        "p10_ms": ordered[len(ordered) // 10],
        "p90_ms": ordered[(len(ordered) * 9) // 10],
        "rounds": len(ordered),
    }


def interleaved(
    calls: dict[object, Callable[[], object]], rounds: int, warmup: int = 2
) -> dict[object, dict]:
    """Each of ``calls`` timed as :func:`timed` does, but taking turns within each
    round: a load that comes and goes slows every call alike."""
    for _ in range(warmup):
        for call in calls.values():
            call()
    samples: dict[object, list[float]] = {key: [] for key in calls}
    for _ in range(rounds):
        for key, call in calls.items():
            started = time.perf_counter()
            call()
            samples[key].append((time.perf_counter() - started) * 1000.0)
    return {key: summary(values) for key, values in samples.items()}
