"""`cvtools bench`: each workload's plain baseline (same network, fp32, eager, unfused,
channels-first) against cvtools' default fast path, timed in the same run, with a check that
the fast path still gives the same answer."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional


@dataclass
class Row:
    workload: str
    variant: str
    ms: float
    per_item: str  # what one timed call processes, e.g. "64 images"
    throughput: float  # items per second
    unit: str
    ratio: float = 1.0  # speed-up over the workload's baseline (baseline_ms / ms)
    first_ms: float = 0.0
    check: str = ""  # agreement with the baseline, e.g. "max|Δ|=2e-4, top-1 same"
    notes: str = ""
    #: rows of one workload that share a baseline (a CAM method, a network): the group's first
    #: row is its baseline (ratio 1.0); "" for a workload with one baseline. first_ms 0: no
    #: separate first call (a row that is a whole run divided by its items)
    group: str = ""


@dataclass
class Suite:
    device: str
    torch: str
    rows: List[Row] = field(default_factory=list)

    def to_json(self) -> Dict:
        return {"device": self.device, "torch": self.torch, "rows": [asdict(r) for r in self.rows]}


def device_name(device) -> str:
    import platform

    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


#: how big the workloads are: "full" (BENCHMARKS.md's figures), "quick", "tiny" (seconds each on a
#: 2-core CPU: that every variant runs, for the tests; its timings mean nothing)
SIZES = ("full", "quick", "tiny")


def run_suite(device: str = "auto", quick: bool = False, only: Optional[List[str]] = None,
              progress: Optional[Callable[[str], None]] = None, size: Optional[str] = None) -> Suite:
    """Every workload (or ``only`` these) on ``device``; ``size`` one of :data:`SIZES` (None:
    "quick" if ``quick`` else "full")."""
    import torch

    from cvtools.backbones import resolve_device
    from cvtools.bench.workloads import WORKLOADS

    unknown = [name for name in (only or ()) if name not in WORKLOADS]
    if unknown:
        from cvtools.errors import CvtoolsError

        raise CvtoolsError(f"unknown workload '{unknown[0]}'; choose from {', '.join(WORKLOADS)}", param="only")
    size = size or ("quick" if quick else "full")
    if size not in SIZES:
        from cvtools.errors import UsageError

        raise UsageError(f"size {size!r} is not one of {', '.join(SIZES)}", param="size")
    dev = resolve_device(device)
    suite = Suite(device_name(dev), torch.__version__)
    for name, fn in WORKLOADS.items():
        if only and name not in only:
            continue
        if progress:
            progress(name)
        # Each workload compiles from a clean slate: the style network compiled for 1080p frames
        # would otherwise be recompiled with dynamic shapes for training batches (measured:
        # 148 s to compile and slower kernels than a fresh static compile).
        torch._dynamo.reset()
        suite.rows.extend(fn(dev, size))
    return suite


def format_table(suite: Suite) -> str:
    lines = [f"device: {suite.device}   torch {suite.torch}", ""]
    header = f"{'workload':<14} {'variant':<34} {'median':>10} {'first':>9} {'throughput':>16} {'speed-up':>8}  check"
    lines += [header, "-" * len(header)]
    for r in suite.rows:
        tp = f"{r.throughput:,.1f} {r.unit}"
        first = f"{r.first_ms:>7.0f}ms" if r.first_ms else f"{'-':>9}"  # whole runs have no first call
        lines.append(f"{r.workload:<14} {r.variant:<34} {r.ms:>8.2f}ms {first} {tp:>16} "
                     f"{r.ratio:>7.2f}x  {r.check}")
    return "\n".join(lines)
