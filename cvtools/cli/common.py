"""Options and batch handling shared by the model commands."""

from __future__ import annotations

import functools
import os
import sys
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence

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
            os.environ["CVTOOLS_MAX_PIXELS"] = str(value)
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


def run_batch(
    inputs: Sequence[str],
    work: Callable,
    desc: str,
    quiet: bool = False,
) -> BatchReport:
    """Expand inputs, call ``work(path)`` on each with a progress bar, and keep going past
    per-file errors (reported on one line each). ``work`` returns a note or None."""
    from cvtools.errors import CvtoolsError
    from cvtools.imageio import expand_inputs

    report = BatchReport()
    paths, problems = expand_inputs(inputs)
    for problem in problems:
        echo_err(f"error: {problem}")
        report.failed.append(problem.path)
    if not paths:
        if not problems:
            echo_err("error: no input images")
            report.failed.append("")
        return report
    bar = None
    if not quiet and len(paths) > 1:
        from tqdm import tqdm

        bar = tqdm(total=len(paths), desc=desc, unit="img", file=sys.stderr, dynamic_ncols=True)
    try:
        for path in paths:
            try:
                note = work(path)
                report.done.append(str(path))
                if note and not quiet:
                    (bar.write if bar else click.echo)(note)
            except CvtoolsError as exc:
                msg = str(exc) if str(path) in str(exc) else f"{path}: {exc}"
                (bar.write if bar else echo_err)(f"cvtools: error: {msg}" if bar else f"error: {msg}")
                report.failed.append(str(path))
            except RuntimeError as exc:  # e.g. an out-of-memory that no fallback could handle
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
                (bar.write if bar else echo_err)(f"cvtools: error: {path}: {first}" if bar else f"error: {path}: {first}")
                report.failed.append(str(path))
            if bar:
                bar.update(1)
    finally:
        if bar:
            bar.close()
    if report.failed and len(paths) + len(problems) > 1 and not quiet:
        echo_err(f"{len(report.failed)} of {len(paths) + len(problems)} inputs failed")
    return report


def finish(report: BatchReport):
    """Exit with the batch's status (non-zero when any input failed)."""
    raise click.exceptions.Exit(report.exit_code)
