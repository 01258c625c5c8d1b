"""Options and batch handling shared by the model commands."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, List, Optional, Sequence

import click

BACKBONE_HELP = (
    "Pretrained network: efficientnet_lite0 (default, embedded), efficientnet_lite1/2, vgg16, vgg19, "
    "resnet18, resnet50, googlenet, mobilenet_v3_large, efficientnet_b0. See `cvtools backbones`."
)


def model_options(f):
    """--backbone --weights --device --precision --no-fuse --compile."""
    options = [
        click.option("--backbone", "-b", default="efficientnet_lite0", show_default=True, help=BACKBONE_HELP),
        click.option("--weights", metavar="PATH|random",
                     help="Backbone weights: a local state dict (.pth/.safetensors), or 'random' for tests. "
                          "Default: the pretrained weights."),
        click.option("--device", default="auto", show_default=True, help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N, mps."),
        click.option("--precision", type=click.Choice(["auto", "fp32", "fp16", "bf16"]), default="auto",
                     show_default=True, help="auto: fp16 on GPU, fp32 on CPU."),
        click.option("--no-fuse", is_flag=True, help="Keep BatchNorm layers separate (slower; for checking)."),
        click.option("--compile", "compile_", is_flag=True, help="torch.compile the network (slow start, faster long runs)."),
        click.option("--tune", is_flag=True,
                     help="GPU: autotune cuDNN for each new image size (seconds per size, ~30% faster after): "
                          "for long runs at one size, e.g. animations."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def quiet_option(f):
    return click.option("-q", "--quiet", is_flag=True, help="No progress bar or notes; errors only.")(f)


def output_options(f):
    f = click.option("--overwrite", is_flag=True,
                     help="Replace existing outputs (and redo finished ones) instead of skipping them or "
                          "writing NAME_SUFFIX-2.EXT.")(f)
    f = click.option("-o", "--output", metavar="PATH",
                     help="Output file (one input) or directory. Default: next to each input, with a suffix. "
                          "Inputs are never overwritten; an existing file only with --overwrite; a re-run "
                          "skips finished outputs.")(f)
    return f


#: Options that do not change what a command writes: left out of the provenance digest, so a
#: re-run on another device, with another tile size or batch size, still finds its outputs.
NOT_OUTPUT_OPTIONS = frozenset({
    "inputs", "output", "overwrite", "quiet", "device", "precision", "no_fuse", "compile_", "tune", "no_cuda_graphs",
    "tile", "batch_size", "internal_batch_size", "as_json", "max_pixels", "threads", "workers",
})


def provenance_from_click(ctx=None):
    """The running command and the options that shape its outputs, from click's context (None
    outside a click command): what output markers record and re-runs compare."""
    from cvtools.imageio import Provenance

    ctx = ctx or click.get_current_context(silent=True)
    if ctx is None:
        return None
    names = []
    c = ctx
    while c is not None and c.parent is not None:
        names.append(c.info_name or "")
        c = c.parent
    if not names and ctx.info_name:
        names = [ctx.info_name]
    options = {}
    for param in getattr(ctx.command, "params", []):
        if not isinstance(param, click.Option) or param.name in NOT_OUTPUT_OPTIONS or param.name not in ctx.params:
            continue
        key = max(param.opts, key=len) if param.opts else param.name
        value = ctx.params[param.name]
        options[key] = list(value) if isinstance(value, (tuple, list)) else value
    return Provenance(" ".join(reversed(names)), options)


def tune_option(f):
    """``--tune`` for commands that build their network themselves (stylize): it reaches the
    library through ``CVTOOLS_TUNE``, restored when the command ends."""

    def set_env(ctx, param, value):
        if value:
            previous = os.environ.get("CVTOOLS_TUNE")
            os.environ["CVTOOLS_TUNE"] = "1"
            ctx.call_on_close(lambda: os.environ.__setitem__("CVTOOLS_TUNE", previous) if previous is not None
                              else os.environ.pop("CVTOOLS_TUNE", None))
        return value

    return click.option("--tune", is_flag=True, expose_value=False, callback=set_env,
                        help="GPU: autotune cuDNN for each new image size (a second or two per size, faster "
                             "after): for folders of same-size photos.")(f)


def max_pixels_option(f):
    def set_env(ctx, param, value):
        if value is not None:
            # Through the environment so DataLoader workers see it too; restored when the
            # command ends, so one invocation never changes the limit of the next (tests, API).
            previous = os.environ.get("CVTOOLS_MAX_PIXELS")
            os.environ["CVTOOLS_MAX_PIXELS"] = str(value)

            def restore():
                if previous is None:
                    os.environ.pop("CVTOOLS_MAX_PIXELS", None)
                else:
                    os.environ["CVTOOLS_MAX_PIXELS"] = previous

            ctx.call_on_close(restore)
        return value

    return click.option("--max-pixels", type=int, callback=set_env, expose_value=False, metavar="N",
                        help="Refuse images over N pixels (default 100 MP; 0 disables the guard).")(f)


def load_backbone_from_options(backbone, weights, device, precision, no_fuse, compile_, tune=False, **_):
    from cvtools.backbones import load_backbone

    return load_backbone(backbone, device=device, fuse=not no_fuse, precision=precision,
                         compile=compile_, weights=weights, tune=tune or None)


def echo_err(message: str) -> None:
    click.echo(f"cvtools: {message}", err=True)


@dataclass
class BatchReport:
    done: List[str] = field(default_factory=list)
    failed: List[str] = field(default_factory=list)
    #: wall-clock span of the loop over the files (model loading is before it): time.time() values
    started: float = 0.0
    ended: float = 0.0
    #: inputs whose output was already there (same command, options and input): not failures
    skipped: List[str] = field(default_factory=list)
    #: files found in folders that are this command's own outputs: left out, not failures
    excluded: List[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def rate_line(self, processes: int = 1) -> str:
        """'N images in T s (R img/s[ on K processes])' for the summary of a folder run; below
        one image a second, 'S s/img' (slow work never reads '0.0 img/s')."""
        seconds = max(1e-9, self.ended - self.started)
        n = len(self.done)
        on = f" on {processes} processes" if processes > 1 else ""
        rate = n / seconds
        speed = f"{seconds / n:.1f} s/img" if n and rate < 1.0 else f"{rate:.1f} img/s"
        return f"{n} image{'s' if n != 1 else ''} in {seconds:.1f} s ({speed}{on})"

    def summary_line(self, processes: int = 1) -> Optional[str]:
        """'done: ...' with the rate, the inputs skipped as already done and the earlier outputs
        left out of the inputs; None when there is nothing to say."""
        parts = [self.rate_line(processes)] if self.done else []
        if self.skipped:
            n = len(self.skipped)
            parts.append(f"skipped {n} already done (same command and options; --overwrite redoes them)")
        if self.excluded:
            n = len(self.excluded)
            parts.append(f"left out {n} earlier output{'s' if n != 1 else ''} of this command found among the "
                         "inputs")
        return f"done: {'; '.join(parts)}" if parts else None


def _error_line(path, exc) -> str:
    from cvtools.errors import one_line, safe_path

    msg = one_line(str(exc))
    shown = safe_path(path)
    return msg if shown in msg else f"{shown}: {msg}"


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class _Interrupted(KeyboardInterrupt):
    """SIGTERM during a batch, raised like Ctrl-C so temporary files are cleaned up."""


def _on_sigterm(signum, frame):
    raise _Interrupted()


@dataclass
class StagedWork:
    """Per-file work in stages, so that ``run_batch`` can overlap them across files: while the
    device computes one image, worker threads decode the next ones and encode the previous ones
    (Pillow's decoders and encoders, and file I/O, release the GIL).

    - ``prepare(path)`` (optional): main thread, in input order, before the file is loaded
      (e.g. naming its output with ``output_path_for``, so the checks and the output claims
      happen in input order and a refused file is never decoded);
    - ``load(path) -> item``: a loader thread, a few files ahead of the computation;
    - ``compute(path, item) -> pending``: the main thread (the device work), in input order;
    - ``save(path, pending) -> note or None``: a writer thread; the note is printed, and the
      progress bar advances, once the file is saved, in input order.

    An exception in any stage fails that file only (reported on one line naming it).
    ``threads``: workers per pool (None: min(4, CPUs)); 0 runs every stage on the main thread,
    one file after another, as does ``CVTOOLS_IO_THREADS=0`` (for debugging).
    """

    load: Callable[[Any], Any]
    compute: Callable[[Any, Any], Any]
    save: Callable[[Any, Any], Optional[str]]
    prepare: Optional[Callable[[Any], None]] = None
    threads: Optional[int] = None

    def __call__(self, path, item):
        return self.compute(path, item)


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def io_threads(work) -> int:
    """Worker threads per pool for staged work: ``CVTOOLS_IO_THREADS`` if set, else the work's
    ``threads``, else min(4, CPUs). 0 means serial."""
    env = os.environ.get("CVTOOLS_IO_THREADS", "").strip()
    if env:
        try:
            return max(0, int(env))
        except ValueError:
            from cvtools.errors import UsageError

            raise UsageError(f"CVTOOLS_IO_THREADS={env!r} is not a number of threads") from None
    threads = getattr(work, "threads", None)
    return max(0, int(threads)) if threads is not None else min(4, _cpu_count())


def _is_staged(work) -> bool:
    return hasattr(work, "load") and hasattr(work, "save")


class _Failed:
    """A stage's exception, kept until its file's turn to be reported."""

    __slots__ = ("exc",)

    def __init__(self, exc):
        self.exc = exc


def _run_staged(work, paths, threads: int, ok, fail, late) -> None:
    """Run staged work over ``paths``; ``ok(path, note)`` / ``fail(path, exc)`` are called on
    the main thread once per file, in input order. On Ctrl-C or SIGTERM: files not started are
    dropped, the loads and saves under way finish (saves are atomic), ``late(path)`` is called
    for each file whose save completed but was not reported yet, and the interrupt goes on."""
    from collections import deque
    from concurrent.futures import Future, ThreadPoolExecutor

    prepare = getattr(work, "prepare", None)
    if threads <= 0 or len(paths) <= 1:
        for path in paths:
            try:
                if prepare is not None:
                    prepare(path)
                note = work.save(path, work(path, work.load(path)))
            except Exception as exc:
                fail(path, exc)
            else:
                ok(path, note)
        return

    lookahead = threads + 1  # loaded (or loading) files waiting for the device: bounded memory
    max_saves = 2 * threads  # results waiting for a writer: bounded memory
    loaders = ThreadPoolExecutor(threads, thread_name_prefix="cvtools-load")
    writers = ThreadPoolExecutor(threads, thread_name_prefix="cvtools-save")
    loads: deque = deque()  # (path, Future of the item | _Failed)
    results: deque = deque()  # (path, Future of the note | _Failed), in input order
    queued = 0

    def feed():
        nonlocal queued
        while queued < len(paths) and len(loads) < lookahead:
            path = paths[queued]
            queued += 1
            try:
                if prepare is not None:
                    prepare(path)
            except Exception as exc:
                loads.append((path, _Failed(exc)))
            else:
                loads.append((path, loaders.submit(work.load, path)))

    def report(limit):
        """Report finished files from the head; wait for the head while more than ``limit``
        results are outstanding."""
        while results:
            path, r = results[0]
            if isinstance(r, Future):
                if not r.done() and len(results) <= limit:
                    return
                try:
                    note = r.result()
                except Exception as exc:
                    results.popleft()
                    fail(path, exc)
                else:
                    results.popleft()
                    ok(path, note)
            else:
                results.popleft()
                fail(path, r.exc)

    try:
        feed()
        while loads:
            path, loading = loads.popleft()
            feed()  # keep the loaders busy while this file is computed
            try:
                if isinstance(loading, _Failed):
                    raise loading.exc
                item = loading.result()
                loading = None
                pending = work(path, item)
                del item
            except Exception as exc:
                results.append((path, _Failed(exc)))
            else:
                results.append((path, writers.submit(work.save, path, pending)))
                del pending
            report(max_saves)
        report(0)
    except KeyboardInterrupt:
        for pool in (loaders, writers):
            pool.shutdown(wait=True, cancel_futures=True)
        for path, r in results:
            if isinstance(r, Future) and r.done() and not r.cancelled() and r.exception() is None:
                late(path)
        raise
    finally:
        for pool in (loaders, writers):
            pool.shutdown(wait=True, cancel_futures=True)


def run_batch(
    inputs: Sequence[str],
    work: Callable,
    desc: str,
    quiet: bool = False,
    provenance=None,
) -> BatchReport:
    """Expand inputs, call ``work(path)`` on each with a progress bar, and keep going past
    per-file errors (reported on one line each). ``work`` returns a note or None.

    ``work`` may instead be staged (a ``StagedWork``, or anything with ``load``, ``save`` and
    ``__call__(path, item)``): then decoding and encoding run in worker threads, overlapped
    with the computation on the main thread; errors, notes and progress are the same, in
    input order.

    - A ``CvtoolsError``, a ``RuntimeError`` (e.g. an out-of-memory no fallback could handle),
      a ``MemoryError`` or any other exception from one file is reported on one line naming
      the file and the batch goes on (``CVTOOLS_DEBUG=1`` shows tracebacks of unexpected ones).
    - Two inputs never write the same output file (see ``imageio.output_claims``).
    - Re-runs (``imageio.output_path_for``): an input whose output is already there from the
      same command and options is skipped and counted ("skipped N already done", exit 0); an
      output name taken otherwise moves the new result to the next free name, with a note; this
      command's own outputs found in a folder are left out of the inputs. ``provenance`` (the
      command and its options) defaults to the running click command's.
    - Ctrl-C or SIGTERM stops the batch: the file being written is discarded (writes are
      atomic), every finished output stays complete, and the command exits with 130. (Staged:
      saves already under way finish, queued ones are dropped, no new file is started.)
    """
    import signal
    import threading

    from cvtools.imageio import expand_inputs, output_claims

    from cvtools import distributed

    report = BatchReport()
    found: set = set()
    paths, problems = expand_inputs(inputs, found=found)
    if provenance is None:
        provenance = provenance_from_click()
    # Under torchrun each rank takes one shard of the inputs; rank 0 speaks for the whole run.
    dist = distributed.init() if distributed.launched_by_torchrun() else distributed.DistInfo()
    all_paths = paths
    if dist.enabled:
        paths = distributed.shard(paths, dist.rank, dist.world_size)
        if not dist.is_main:
            problems = []
    if hasattr(work, "plan"):  # work that batches ahead needs to know this rank's order
        work.plan(paths)
    for problem in problems:
        echo_err(f"error: {_error_line(problem.path, problem)}")
        report.failed.append(problem.path)
    if not all_paths:
        if not problems:
            echo_err("error: no input images")
            report.failed.append("")
        return report
    staged = _is_staged(work)
    threads = io_threads(work) if staged else 0
    bar = None
    if not quiet and len(paths) > 1 and _is_terminal(sys.stderr):  # no bar debris in logs and pipes
        from tqdm import tqdm

        bar = tqdm(total=len(paths), desc=desc, unit="img", file=sys.stderr, dynamic_ncols=True)

    def error(line):
        if bar is not None:
            bar.write(f"cvtools: error: {line}", file=sys.stderr)
        else:
            echo_err(f"error: {line}")

    debug = bool(os.environ.get("CVTOOLS_DEBUG"))

    def tell(message):
        if quiet:
            return
        if bar is not None:
            bar.write(f"cvtools: note: {message}", file=sys.stderr)
        else:
            echo_err(f"note: {message}")

    def ok(path, note):
        report.done.append(str(path))
        if note and not quiet:
            (bar.write if bar else click.echo)(note)
        if bar:
            bar.update(1)

    def fail(path, exc):
        from cvtools.imageio import OutputSkipped

        if isinstance(exc, OutputSkipped):  # nothing to do for this input: not a failure
            (report.skipped if exc.kind == "done" else report.excluded).append(str(path))
            if len(paths) == 1 or exc.kind == "named_like":  # a name alone is a guess: say which file
                tell(_error_line(path, exc))
        else:
            error(_failure_line(path, exc, debug))  # re-raises what must end the command
            report.failed.append(str(path))
        if bar:
            bar.update(1)

    old_term = None
    if threading.current_thread() is threading.main_thread():
        try:
            old_term = signal.signal(signal.SIGTERM, _on_sigterm)
        except (ValueError, OSError):
            old_term = None
    import time

    report.started = time.time()
    try:
        with output_claims(provenance=provenance, notify=tell, found=found, batch=paths):
            if staged:
                _run_staged(work, paths, threads, ok, fail, lambda path: report.done.append(str(path)))
            else:
                for path in paths:
                    try:
                        note = work(path)
                    except Exception as exc:
                        fail(path, exc)
                    else:
                        ok(path, note)
    except KeyboardInterrupt:
        if bar:
            bar.close()
            bar = None
        in_progress = "those in progress were" if staged and threads and len(paths) > 1 else "the one in progress was"
        echo_err(f"interrupted after {len(report.done)} of {len(paths)} inputs; every output written "
                 f"is complete, {in_progress} discarded; run the same command again to continue")
        raise click.exceptions.Exit(130)
    finally:
        if bar:
            bar.close()
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)
    report.ended = time.time()
    if dist.enabled:
        return _combine_ranks(report, dist, len(all_paths) + len(problems), quiet)
    total = len(paths) + len(problems) - len(report.excluded)
    if report.failed and total > 1 and not quiet:
        echo_err(f"{len(report.failed)} of {total} inputs failed")
    summary = report.summary_line()
    if len(paths) > 1 and summary and not quiet:
        echo_err(summary)
    return report


def _failure_line(path, exc, debug: bool) -> str:
    """The one-line error for one file's exception. Re-raises what must end the whole command
    (a closed pipe, a missing module, click's exits) and anything that is not an Exception."""
    from cvtools.errors import CvtoolsError

    if isinstance(exc, CvtoolsError):
        return _error_line(path, exc)
    if isinstance(exc, MemoryError):
        return _error_line(path, "out of memory; try a smaller --size or --tile")
    if not isinstance(exc, Exception) or isinstance(
            exc, (BrokenPipeError, ImportError, click.exceptions.Exit, click.ClickException)):
        raise exc
    if debug:
        import traceback

        traceback.print_exception(type(exc), exc, exc.__traceback__)
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    if not isinstance(exc, (RuntimeError, OSError)):  # probably a bug: say what kind
        first = f"{type(exc).__name__}: {first}"
    return _error_line(path, first)


def _combine_ranks(report: BatchReport, dist, total: int, quiet: bool) -> BatchReport:
    """Every rank gets the union of all ranks' results (so all exit alike); rank 0 prints the
    one summary of the run."""
    from cvtools import distributed

    parts = distributed.gather_objects((report.done, report.failed, report.started, report.ended, report.skipped,
                                        report.excluded))
    combined = BatchReport([d for p in parts for d in p[0]], [f for p in parts for f in p[1]],
                           min(p[2] for p in parts), max(p[3] for p in parts),
                           [k for p in parts for k in p[4]], [e for p in parts for e in p[5]])
    if dist.is_main and not quiet:
        echo_err(f"{len(combined.done)} of {total - len(combined.excluded)} inputs done on {dist.world_size} processes"
                 + (f", {len(combined.failed)} failed" if combined.failed else "")
                 + (f", {len(combined.skipped)} skipped as already done" if combined.skipped else "")
                 + (f", {len(combined.excluded)} earlier outputs left out" if combined.excluded else "")
                 + (f": {combined.rate_line(dist.world_size)}" if combined.done else ""))
    return combined


def finish(report: BatchReport):
    """Exit with the batch's status (non-zero when any input failed)."""
    raise click.exceptions.Exit(report.exit_code)
