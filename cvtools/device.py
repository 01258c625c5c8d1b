"""Where work runs and in what precision, and how much memory it may use.

>>> dev = resolve_device("auto")                 # cuda (this rank's GPU under torchrun), mps, cpu
>>> dtype = resolve_precision("auto", dev)       # fp16 on GPUs, fp32 on the CPU
>>> budget = memory_budget(dev, gpu_fraction=0.5, cpu_fraction=0.4, cpu_cap=4 << 30)

One home for these policies: every command resolves its ``device``/``precision`` arguments and
sizes its tiles through here. Errors are :class:`~cvtools.errors.UsageError` and name no CLI
option (the CLI's messages add those).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import TYPE_CHECKING, Optional

from cvtools.errors import UsageError

if TYPE_CHECKING:
    import torch

#: Bytes assumed available when the operating system does not say (no /proc, no sysconf).
FALLBACK_CPU_MEMORY = 4 << 30

_PRECISIONS = {"fp32": "float32", "float32": "float32", "fp16": "float16", "float16": "float16",
               "half": "float16", "bf16": "bfloat16", "bfloat16": "bfloat16"}


def rank_cuda() -> str:
    """Under torchrun each process uses its own GPU (LOCAL_RANK); otherwise the current one."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and "LOCAL_RANK" in os.environ:
        return f"cuda:{int(os.environ['LOCAL_RANK'])}"
    return "cuda"


def _mps_available() -> bool:
    import torch

    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def _no_gpu_driver() -> bool:
    """True when this machine certainly has no CUDA driver, known without importing torch
    (Linux: no NVIDIA kernel driver and no WSL GPU device; macOS: CUDA does not exist there).
    False when unsure: torch has the last word then."""
    import sys

    if sys.platform == "darwin":
        return True
    if sys.platform.startswith("linux"):
        return not any(os.path.exists(p) for p in ("/proc/driver/nvidia/version", "/dev/nvidiactl", "/dev/dxg"))
    return False


def check_device_early(device) -> None:
    """Refuse a device that certainly is not here before anything heavy is imported: ``cuda``
    without any NVIDIA driver, ``mps`` off macOS, a name that is no device. What needs torch
    to know (a CUDA driver without a usable GPU) is left to :func:`resolve_device`."""
    import sys

    if device in (None, "auto") or not isinstance(device, str):
        return
    kind, _, index = device.partition(":")
    if kind not in ("cpu", "cuda", "mps") or (index and not index.isdigit()):
        raise UsageError(f"unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps", param="device")
    if kind == "cuda" and _no_gpu_driver():
        raise UsageError(f"device {device} asked for, but this machine has no CUDA GPU driver; use device='cpu'",
                         param="device")
    if kind == "mps" and sys.platform != "darwin":
        raise UsageError("device mps asked for, but MPS exists only on Apple machines", param="device")


def expects_gpu(device) -> bool:
    """Whether ``device`` will most likely be a GPU, without importing torch (for defaults such
    as batch sizes that are set before the network loads): a named cuda/mps device, or ``auto``
    on a machine with a GPU driver or on macOS (MPS)."""
    import sys

    if device in (None, "auto"):
        return sys.platform == "darwin" or not _no_gpu_driver()
    return str(device).split(":")[0] in ("cuda", "mps")


def resolve_device(device="auto") -> "torch.device":
    """``"auto"``/None: CUDA (this rank's GPU), then MPS, then the CPU; otherwise the named
    device, checked to exist (``"cuda"`` without an index means this rank's GPU)."""
    import torch

    if isinstance(device, torch.device):
        device = str(device)
    if device in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device(rank_cuda())
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise UsageError(f"unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device {device} asked for, but no CUDA GPU is available (torch sees none)")
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device(rank_cuda())
    if dev.type == "mps" and not _mps_available():
        raise UsageError("device mps asked for, but MPS is not available")
    return dev


def resolve_precision(precision, device) -> "torch.dtype":
    """'auto' is fp16 on GPUs (tensor cores) and fp32 on the CPU (measured faster there);
    otherwise fp32/float32, fp16/float16/half or bf16/bfloat16. fp16 on the CPU is refused."""
    import torch

    if precision in (None, "auto"):
        return torch.float16 if device.type in ("cuda", "mps") else torch.float32
    if precision not in _PRECISIONS:
        raise UsageError(f"unknown precision {precision!r}; use auto, fp32, fp16 or bf16")
    dtype = getattr(torch, _PRECISIONS[precision])
    if dtype == torch.float16 and device.type == "cpu":
        raise UsageError("fp16 on the CPU is very slow in PyTorch; use precision fp32 or bf16")
    return dtype


def available_cpu_memory() -> int:
    """Bytes of RAM available without swapping: MemAvailable (free plus reclaimable cache) where
    /proc says it, else the free pages, else :data:`FALLBACK_CPU_MEMORY`."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # macOS, Windows
        pass
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        return FALLBACK_CPU_MEMORY


def available_memory(device) -> int:
    """Free bytes where ``device`` keeps its tensors: the GPU's free memory on CUDA, else RAM."""
    if getattr(device, "type", str(device).split(":")[0]) == "cuda":
        import torch

        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    return available_cpu_memory()


def memory_budget(device, gpu_fraction: float, cpu_fraction: float, cpu_cap: int) -> int:
    """Bytes one piece of work may use on ``device``: ``gpu_fraction`` of the free GPU memory on
    CUDA; elsewhere ``cpu_fraction`` of the available RAM, at most ``cpu_cap`` (large images are
    tiled long before a laptop starts swapping)."""
    free = available_memory(device)
    if getattr(device, "type", str(device).split(":")[0]) == "cuda":
        return int(free * gpu_fraction)
    return int(min(free * cpu_fraction, cpu_cap))


@contextmanager
def cudnn_benchmark(enabled: Optional[bool], device=None):
    """cuDNN autotuning (``torch.backends.cudnn.benchmark``) on or off for the calls inside this
    block, and the earlier value put back after it: the flag is process-wide, so a network that
    set it when it loaded changed the speed of every other one (a folder's tuned stylizer, an
    untuned dream). ``enabled=None`` or a ``device`` that is not CUDA leaves it alone. The flag
    is read when kernels are chosen, so wrap backward passes too. Not for concurrent calls in
    several threads with different wishes (the flag is one for the process)."""
    if enabled is None or (device is not None and getattr(device, "type", device) != "cuda"):
        yield
        return
    import torch

    previous = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = bool(enabled)
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = previous


def autotuned(fn):
    """``fn(backbone, ...)`` run whole under ``backbone.autotuning()`` (see
    :meth:`cvtools.backbones.base.Backbone.autotuning`): forward and backward passes
    of one call (an attribution batch, a feature visualization) autotuned when the network asks."""
    import functools

    @functools.wraps(fn)
    def run(backbone, *args, **kwargs):
        with backbone.autotuning():
            return fn(backbone, *args, **kwargs)

    return run


def autotuned_step(method):
    """A method of an object holding a ``backbone`` (an engine's step: a dream, an attribution
    batch, a training step) run whole under ``self.backbone.autotuning()``."""
    import functools

    @functools.wraps(method)
    def run(self, *args, **kwargs):
        with self.backbone.autotuning():
            return method(self, *args, **kwargs)

    return run
