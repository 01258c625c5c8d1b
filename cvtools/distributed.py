"""Running on several GPUs (or CPU processes) with PyTorch's own engine, torchrun.

``torchrun --nproc-per-node N -m cvtools COMMAND ...`` starts N copies of cvtools; each reads
its rank from the environment torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK). Training wraps
the network in DistributedDataParallel; folder commands give each rank one shard of the inputs
and rank 0 prints the combined summary. Without torchrun everything here is a no-op (rank 0
of 1), so the single-process code path is the same code.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import List, Sequence, TypeVar

T = TypeVar("T")

# NVLink multicast (NVLS) can take shared GPUs out of service on the machines we measure on;
# cvtools never needs it, so it is off unless the user sets these themselves.
SAFE_ENV = {"NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1", "NVSHMEM_DISABLE_NVLS": "1"}


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1


def info() -> DistInfo:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    return DistInfo()


def init(device: str = "auto") -> DistInfo:
    """Join the process group when started by torchrun (NCCL on GPUs, gloo on CPUs).

    Returns the rank info; safe to call more than once and when not distributed.
    """
    import torch
    import torch.distributed as dist

    if not launched_by_torchrun():
        return DistInfo()
    for key, value in SAFE_ENV.items():
        os.environ.setdefault(key, value)
    if not dist.is_initialized():
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        use_cuda = device != "cpu" and torch.cuda.is_available()
        if use_cuda:
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
        global _owned
        _owned = True
        import atexit

        atexit.register(shutdown)  # leave the group cleanly (NCCL warns of leaked resources otherwise)
    return info()


def shard(items: Sequence[T], rank: int, world_size: int) -> List[T]:
    """Every world_size-th item starting at rank: balanced, deterministic, covers each once."""
    return list(items[rank::world_size])


def gather_objects(obj):
    """All ranks' ``obj`` as a list on every rank (just ``[obj]`` when not distributed)."""
    import torch.distributed as dist

    d = info()
    if not d.enabled:
        return [obj]
    out = [None] * d.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier():
    import torch.distributed as dist

    if info().enabled:
        dist.barrier()


def shutdown():
    """Leave the group without waiting for the others (the exit handler: also runs on errors,
    when the other ranks may be anywhere)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


#: True once :func:`init` created the process group (a group the caller made is theirs to end)
_owned = False


def finish():
    """Leave the group together, on the success path: every rank waits at a barrier, then
    destroys its group. Without the barrier a rank that is done early (the ones that do not
    write files) tore its gloo connections down while rank 0 was still using its own, and at
    interpreter exit a gloo thread could end in std::terminate (SIGABRT): seen once in CI on a
    two-process CPU training run, not reproduced in 40 loaded runs here. A group that cvtools did
    not create (a Python caller's own) is left to its owner, after the barrier."""
    if info().enabled:
        barrier()
        if _owned:
            shutdown()


def relaunch_with_torchrun(nproc: int, argv: Sequence[str]) -> int:
    """``cvtools train-style --gpus N ...`` convenience: run the same command under torchrun
    with N processes on this host (``--gpus`` removed from the arguments). Returns the exit code."""
    import subprocess

    env = dict(os.environ)
    for key, value in SAFE_ENV.items():
        env.setdefault(key, value)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "cvtools", *argv]
    return subprocess.call(cmd, env=env)


def strip_gpus_option(argv: Sequence[str]) -> List[str]:
    """argv without ``--gpus N`` / ``--gpus=N``."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "--gpus":
            skip = True
            continue
        if a.startswith("--gpus="):
            continue
        out.append(a)
    return out
