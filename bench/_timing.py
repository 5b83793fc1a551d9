"""The one timing helper of the benchmarks: the median of repeated wall-clock runs (the machine is
shared and noisy, so medians, never means)."""

import statistics
import time


def median_time(fn, repeats, inner=1, setup=None, warm=False):
    """Median seconds per call of `fn` over `repeats` runs of `inner` calls each. `setup` runs untimed
    before every run; `warm` makes one untimed call first (caches, page faults, JIT-like first use)."""
    if warm:
        fn()
    ts = []
    for _ in range(repeats):
        if setup:
            setup()
        t = time.perf_counter()
        for _ in range(inner):
            fn()
        ts.append((time.perf_counter() - t) / inner)
    return statistics.median(ts)


def warm_median(fn, repeats, inner=1):
    """`median_time` after one untimed call."""
    return median_time(fn, repeats, inner, warm=True)


def timed(fn, repeats):
    """(median seconds, the last result) of `repeats` calls of `fn`."""
    last = [None]

    def run():
        last[0] = fn()

    return median_time(run, repeats), last[0]
