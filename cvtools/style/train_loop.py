"""The steps of a train-style run (:class:`TrainingLoop`): losses averaged and checked at each
log step, checkpoints, previews, the images/s, and a clean stop on Ctrl-C or SIGTERM
(:class:`StopFlag`)."""

from __future__ import annotations

import math
import signal
import threading
import time
from pathlib import Path
from typing import Callable, Dict, Optional

import torch

from cvtools.style.train_config import TrainingStopped
from cvtools.style.trainer import Trainer

#: ``progress(step, steps, losses)``: see :func:`cvtools.style.train.train_style`.
Progress = Callable[[int, int, Optional[Dict[str, float]]], None]


class StopFlag:
    """SIGINT/SIGTERM set a flag that the loop checks between steps (so the checkpoint it then
    writes is consistent); a second Ctrl-C interrupts at once."""

    def __init__(self):
        self.signal: Optional[int] = None
        self._old = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal = signum

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


class TrainingLoop:
    """The steps of :func:`train_style`: losses averaged over each log interval (reported to
    ``progress``, kept in the history, checked for NaN/inf), checkpoints, previews, and a clean
    stop on Ctrl-C or SIGTERM. After :meth:`run`, the rates are the global batch's (every
    process's)."""

    def __init__(self, trainer: Trainer, start: int, progress: Optional[Progress]):
        c = trainer.config
        self.trainer, self.config, self.dist = trainer, c, trainer.dist
        self.start = start  # (a resumed run reports the steps it did itself)
        self.progress = progress
        self.sums: Dict[str, torch.Tensor] = {}
        self.count = 0  # steps in self.sums
        self.images = 0  # images this process has trained on
        self.t0 = time.perf_counter()
        self.elapsed_before = trainer.elapsed
        # The steady rate is timed from the first log step after a short warm-up (the log steps
        # wait for the device anyway: they read the losses), so start-up never dilutes it.
        self.steady_from = start + max(c.log_every, min(50, (c.steps - start) // 4))
        self.steady_mark = None  # (time, images) at that log step
        self.images_per_second = 0.0
        self.steady_images_per_second = 0.0

    def run(self, loader, preview: Optional[torch.Tensor], preview_every: int, preview_dir: Path) -> None:
        trainer, c = self.trainer, self.config
        trainer.net.train()
        if self.progress is not None:
            self.progress(trainer.step_count, c.steps, None)
        with StopFlag() as stop:
            try:
                self._steps(loader, preview, preview_every, preview_dir, stop)
            except RuntimeError as exc:
                # a worker killed by the same signal (one started before it ignored them) is the stop
                if stop.signal is None or "DataLoader worker" not in str(exc):
                    raise
                self._stop(stop.signal)
        self._log()
        self._measure()

    def _steps(self, loader, preview: Optional[torch.Tensor], preview_every: int, preview_dir: Path,
               stop: StopFlag) -> None:
        trainer, c, dist = self.trainer, self.config, self.dist
        for batch in loader:
            self._step(batch)
            s = trainer.step_count
            losses = self._log() if s % c.log_every == 0 or s == c.steps else None
            if self.progress is not None:
                self.progress(s, c.steps, losses)
            if c.checkpoint_every and s % c.checkpoint_every == 0 and s < c.steps:
                self._checkpoint()
            if preview is not None and s % preview_every == 0 and dist.is_main:
                trainer.save_preview(preview, preview_dir / f"step_{s:06d}.jpg")
            # (several processes agree on stopping at log steps: one tiny all-reduce per log)
            if (not dist.enabled or s % c.log_every == 0) and _any_rank(stop.signal is not None, dist):
                self._stop(stop.signal)

    def _step(self, batch: torch.Tensor) -> None:
        parts = self.trainer.step(batch)
        for k, v in parts.items():  # summed on the device: reading them would wait for it
            self.sums[k] = self.sums[k] + v if k in self.sums else v.clone()
        self.count += 1
        self.images += batch.shape[0]

    def _log(self) -> Optional[Dict[str, float]]:
        """The losses since the last log, averaged into the history (None when no step was
        taken since), with the images/s so far; a NaN or infinite loss stops training
        (TrainingStopped naming the last good checkpoint)."""
        trainer = self.trainer
        if not self.count:
            return None
        if self.dist.enabled:  # the logged losses are the global batch's, as on one process
            import torch.distributed as tdist

            keys = sorted(self.sums)
            stacked = torch.stack([self.sums[k].float() for k in keys])
            tdist.all_reduce(stacked)
            self.sums = dict(zip(keys, stacked / self.dist.world_size))
        avg = {k: float(v) / self.count for k, v in self.sums.items()}  # (waits for the device)
        if self.steady_mark is None and trainer.step_count >= self.steady_from:
            self.steady_mark = (time.perf_counter(), self.images)
        if not all(math.isfinite(v) for v in avg.values()):
            ckpt = trainer.checkpoint_path if trainer.last_good_step is not None else None
            where = f"; the last good checkpoint is {ckpt} (step {trainer.last_good_step})" if ckpt else ""
            raise TrainingStopped(f"the loss became NaN or infinite near step {trainer.step_count}{where}; "
                                  "try a lower `lr` or `style_weight`", ckpt, param=("lr", "style_weight"))
        avg["step"] = trainer.step_count
        trainer.history.append(avg)
        self.sums, self.count = {}, 0
        rate = self.images * self.dist.world_size / max(1e-9, time.perf_counter() - self.t0)
        return dict(avg, images_per_second=rate)

    def _checkpoint(self) -> Path:
        """A checkpoint of the state after the losses are checked (never one of a diverged
        network); the first process writes it."""
        self._log()
        self.trainer.elapsed = self.elapsed_before + time.perf_counter() - self.t0
        return self.trainer.save_checkpoint() if self.dist.is_main else self.trainer.checkpoint_path

    def _stop(self, signum: Optional[int]) -> None:
        path = self._checkpoint()
        name = "SIGTERM" if signum == signal.SIGTERM else "Ctrl-C"
        raise TrainingStopped(f"stopped by {name} at step {self.trainer.step_count}; checkpoint saved: {path} "
                              f"(continue with `resume` {path})", path, exit_code=130, param="resume")

    def _measure(self) -> None:
        end = time.perf_counter()
        seconds = end - self.t0
        self.trainer.elapsed = self.elapsed_before + seconds
        steady = self.images / max(1e-9, seconds)
        if self.steady_mark is not None and self.images > self.steady_mark[1]:
            steady = (self.images - self.steady_mark[1]) / max(1e-9, end - self.steady_mark[0])
        world = self.dist.world_size  # every process trained on its share of each global batch
        self.images_per_second = self.images * world / max(1e-9, seconds)
        self.steady_images_per_second = steady * world


def _any_rank(flag: bool, dist) -> bool:
    """True on every rank when any rank has it (all ranks must stop at the same step, or DDP
    would wait forever for the ones that left)."""
    if not dist.enabled:
        return flag
    import torch.distributed as tdist

    t = torch.tensor([1 if flag else 0], device="cuda" if tdist.get_backend() == "nccl" else "cpu")
    tdist.all_reduce(t, op=tdist.ReduceOp.MAX)
    return bool(t.item())
