"""Timing that means something: warm-up first, medians, device events on GPUs."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable, List


@dataclass
class Timing:
    median_ms: float
    samples_ms: List[float]
    first_ms: float  # the first call (compilation, autotuning, allocation) reported separately

    @property
    def spread(self) -> float:
        """(max - min) / median of the timed repeats: how much to trust a small difference."""
        if len(self.samples_ms) < 2 or self.median_ms == 0:
            return 0.0
        return (max(self.samples_ms) - min(self.samples_ms)) / self.median_ms


def _sync(device):
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def measure(fn: Callable[[], object], device, warmup: int = 3, repeat: int = 10,
            min_time_s: float = 0.0) -> Timing:
    """Median milliseconds of ``fn()``; GPU work is timed with CUDA events."""
    import torch

    t0 = time.perf_counter()
    fn()
    _sync(device)
    first = (time.perf_counter() - t0) * 1e3
    for _ in range(max(0, warmup - 1)):
        fn()
    _sync(device)
    samples = []
    start_all = time.perf_counter()
    while len(samples) < repeat or (time.perf_counter() - start_all) < min_time_s:
        if device.type == "cuda":
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            b.synchronize()
            samples.append(a.elapsed_time(b))
        else:
            t = time.perf_counter()
            fn()
            _sync(device)
            samples.append((time.perf_counter() - t) * 1e3)
        if len(samples) >= 10 * repeat:
            break
    return Timing(statistics.median(samples), samples, first)
