"""Options and batch handling shared by the model commands."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Callable, List, Sequence

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
    ]
    for option in reversed(options):
        f = option(f)
    return f


def quiet_option(f):
    return click.option("-q", "--quiet", is_flag=True, help="No progress bar or notes; errors only.")(f)


def output_options(f):
    f = click.option("--overwrite", is_flag=True, help="Replace existing output files.")(f)
    f = click.option("-o", "--output", metavar="PATH",
                     help="Output file (one input) or directory. Default: next to each input, with a suffix; "
                          "inputs are never overwritten.")(f)
    return f


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


def load_backbone_from_options(backbone, weights, device, precision, no_fuse, compile_, **_):
    from cvtools.backbones import load_backbone

    return load_backbone(backbone, device=device, fuse=not no_fuse, precision=precision,
                         compile=compile_, weights=weights)


def echo_err(message: str) -> None:
    click.echo(f"cvtools: {message}", err=True)


@dataclass
class BatchReport:
    done: List[str] = field(default_factory=list)
    failed: List[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


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


def run_batch(
    inputs: Sequence[str],
    work: Callable,
    desc: str,
    quiet: bool = False,
) -> BatchReport:
    """Expand inputs, call ``work(path)`` on each with a progress bar, and keep going past
    per-file errors (reported on one line each). ``work`` returns a note or None.

    - A ``CvtoolsError``, a ``RuntimeError`` (e.g. an out-of-memory no fallback could handle),
      a ``MemoryError`` or any other exception from one file is reported on one line naming
      the file and the batch goes on (``CVTOOLS_DEBUG=1`` shows tracebacks of unexpected ones).
    - Two inputs never write the same output file (see ``imageio.output_claims``).
    - Ctrl-C or SIGTERM stops the batch: the file being written is discarded (writes are
      atomic), every finished output stays complete, and the command exits with 130.
    """
    import signal
    import threading

    from cvtools.errors import CvtoolsError
    from cvtools.imageio import expand_inputs, output_claims

    from cvtools import distributed

    report = BatchReport()
    paths, problems = expand_inputs(inputs)
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
    old_term = None
    if threading.current_thread() is threading.main_thread():
        try:
            old_term = signal.signal(signal.SIGTERM, _on_sigterm)
        except (ValueError, OSError):
            old_term = None
    try:
        with output_claims():
            for path in paths:
                try:
                    note = work(path)
                    report.done.append(str(path))
                    if note and not quiet:
                        (bar.write if bar else click.echo)(note)
                except CvtoolsError as exc:
                    error(_error_line(path, exc))
                    report.failed.append(str(path))
                except MemoryError:
                    error(_error_line(path, "out of memory; try a smaller --size or --tile"))
                    report.failed.append(str(path))
                except Exception as exc:
                    if isinstance(exc, (BrokenPipeError, ImportError, click.exceptions.Exit, click.ClickException)):
                        raise
                    if debug:
                        import traceback

                        traceback.print_exc()
                    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
                    if not isinstance(exc, (RuntimeError, OSError)):  # probably a bug: say what kind
                        first = f"{type(exc).__name__}: {first}"
                    error(_error_line(path, first))
                    report.failed.append(str(path))
                if bar:
                    bar.update(1)
    except KeyboardInterrupt:
        if bar:
            bar.close()
            bar = None
        echo_err(f"interrupted after {len(report.done)} of {len(paths)} inputs; every output written "
                 "is complete, the one in progress was discarded")
        raise click.exceptions.Exit(130)
    finally:
        if bar:
            bar.close()
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)
    if dist.enabled:
        return _combine_ranks(report, dist, len(all_paths) + len(problems), quiet)
    if report.failed and len(paths) + len(problems) > 1 and not quiet:
        echo_err(f"{len(report.failed)} of {len(paths) + len(problems)} inputs failed")
    return report


def _combine_ranks(report: BatchReport, dist, total: int, quiet: bool) -> BatchReport:
    """Every rank gets the union of all ranks' results (so all exit alike); rank 0 prints the
    one summary of the run."""
    from cvtools import distributed

    parts = distributed.gather_objects((report.done, report.failed))
    combined = BatchReport([d for done, _ in parts for d in done], [f for _, failed in parts for f in failed])
    if dist.is_main and not quiet:
        echo_err(f"{len(combined.done)} of {total} inputs done on {dist.world_size} processes"
                 + (f", {len(combined.failed)} failed" if combined.failed else ""))
    return combined


def finish(report: BatchReport):
    """Exit with the batch's status (non-zero when any input failed)."""
    raise click.exceptions.Exit(report.exit_code)
