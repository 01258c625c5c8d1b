"""Options shared by the model commands, and ``run_batch``: :mod:`cvtools.batch` wired to a
progress bar and the terminal."""

from __future__ import annotations

import os
import sys
from typing import Callable, Optional, Sequence

import click

from cvtools.batch import BatchedWork, BatchReport, StagedWork, io_threads  # noqa: F401  (re-exported)
from cvtools.cli.params import AddedLaterOption

BACKBONE_HELP = (
    "Pretrained network: efficientnet_lite0 (default, embedded), efficientnet_lite1/2, vgg16, vgg19, "
    "resnet18, resnet50, googlenet, mobilenet_v3_large, efficientnet_b0. See `cvtools backbones`."
)


def _floats3(ctx, param, value):
    """--mean/--std: three numbers R,G,B (0-1 pixel units)."""
    if value is None:
        return None
    import math

    try:
        numbers = [float(v) for v in str(value).split(",")]
    except ValueError:
        numbers = []
    if len(numbers) != 3 or not all(math.isfinite(v) for v in numbers):
        raise click.BadParameter(f"three numbers R,G,B (0-1 pixel units), not {value!r}")
    if param.name == "std" and min(numbers) <= 0:
        raise click.BadParameter(f"standard deviations must be positive, not {value!r}")
    return tuple(numbers)


def model_options(f):
    """--model (with --architecture --classes --input-size --mean --std --trust-pickle),
    --backbone --weights --device --precision --no-fuse --compile --tune."""
    options = [
        click.option("--model", "-M", "model", cls=AddedLaterOption, metavar="FILE",
                     help="Your own network instead of --backbone: a state dict (.pth/.safetensors, with "
                          "--architecture), a TorchScript file or a torch.export program (.pt2). Its class count "
                          "comes from the file; `cvtools layers --model FILE` lists its layers."),
        click.option("--architecture", "--arch", "architecture", cls=AddedLaterOption, metavar="NAME",
                     help="For a --model state dict: a torchvision classifier (resnet18, vit_b_16, convnext_tiny, "
                          "swin_t, ...) or timm:NAME (with timm installed)."),
        click.option("--classes", cls=AddedLaterOption, metavar="FILE",
                     help="--model's class names: a .txt (one per line) or .json list (default: the checkpoint's "
                          "own, else 'class 0'...)."),
        click.option("--input-size", cls=AddedLaterOption, type=click.IntRange(8, 4096), metavar="PX",
                     help="--model's input size (default: the architecture's, else 224)."),
        click.option("--mean", cls=AddedLaterOption, callback=_floats3, metavar="R,G,B",
                     help="--model's normalisation mean (default: the architecture's, else ImageNet's)."),
        click.option("--std", cls=AddedLaterOption, callback=_floats3, metavar="R,G,B",
                     help="--model's normalisation standard deviation (default: the architecture's, else ImageNet's)."),
        click.option("--multi-label", is_flag=True, default=None, cls=AddedLaterOption,
                     help="--model has a multi-label head (sigmoid outputs): each class's probability is its own, "
                          "not a share of one softmax."),
        click.option("--trust-pickle", is_flag=True, default=None, cls=AddedLaterOption,
                     help="Load a --model saved as a whole pickled module (torch.save(model)). Pickles run code: "
                          "only for a file you made yourself; better save a state dict, TorchScript or .pt2."),
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
    "tile", "batch_size", "internal_batch_size", "as_json", "max_pixels", "threads", "workers", "trust_pickle",
})


def provenance_from_click(ctx=None):
    """The running command and the options that shape its outputs, from click's context (None
    outside a click command): what output markers record and re-runs compare."""
    from cvtools.io.markers import Provenance

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
        if value is None and getattr(param, "omit_when_unset", False):
            continue  # an option added later (video_options): earlier outputs keep their digest
        options[key] = list(value) if isinstance(value, (tuple, list)) else value
    return Provenance(" ".join(reversed(names)), options)


def tune_option(f):
    """``--tune`` for commands that build their network themselves (stylize): the command passes
    it to the network as ``tune=`` (never through the environment)."""
    return click.option("--tune", is_flag=True,
                        help="GPU: autotune cuDNN for each new image size (a second or two per size, faster "
                             "after): for folders of same-size photos.")(f)


def _max_pixels(ctx, param, value):
    """The limit the library gets as ``max_pixels=``: N, None for no limit (0 or less), and
    without the option the user's ``CVTOOLS_MAX_PIXELS`` (read here, once), else 100 MP."""
    if value is None:
        from cvtools.io.decode import max_pixels_from_env

        return max_pixels_from_env()
    return value if value > 0 else None


def max_pixels_option(f):
    """``--max-pixels N``: the command gets ``max_pixels`` and passes it to every decode."""
    return click.option("--max-pixels", "max_pixels", type=int, callback=_max_pixels, metavar="N",
                        help="Refuse images over N pixels (default: CVTOOLS_MAX_PIXELS, else 100 MP; 0 disables "
                             "the guard).")(f)


def check_model_options_early(model_opts) -> None:
    """What can be checked of the model options before torch is imported: the backbone's name,
    the device (``cuda`` on a machine without a GPU driver), the weights, model and classes
    files' existence and which options go together, so these mistakes answer at once."""
    from cvtools.backbones.registry import get_spec
    from cvtools.device import check_device_early
    from cvtools.errors import UsageError, safe_path

    check_device_early(model_opts.get("device"))
    model = model_opts.get("model")
    if model is not None:
        for option, path in (("--model", model), ("--classes", model_opts.get("classes"))):
            if path is not None and not os.path.isfile(path):
                what = "a directory" if os.path.isdir(path) else "no such file"
                raise UsageError(f"{option} {safe_path(path)}: {what}")
        if model_opts.get("weights"):
            raise UsageError("--weights is for --backbone; a --model file holds its own weights")
        return
    for option in ("architecture", "classes", "input_size", "mean", "std", "multi_label"):
        if model_opts.get(option) is not None:
            raise UsageError(f"--{option.replace('_', '-')} goes with --model FILE (your own network)")
    get_spec(model_opts.get("backbone") or "efficientnet_lite0")
    weights = model_opts.get("weights")
    if weights and weights not in ("random", "default", "DEFAULT") and not os.path.isfile(weights):
        what = "a directory" if os.path.isdir(weights) else "no such file"
        raise UsageError(f"--weights {safe_path(weights)}: {what}")


def load_backbone_from_options(backbone, weights, device, precision, no_fuse, compile_, tune=False, model=None,
                               architecture=None, classes=None, input_size=None, mean=None, std=None,
                               trust_pickle=False, multi_label=False, **_):
    """The network the model options name: ``--model FILE`` (the user's own, through
    :func:`cvtools.backbones.load_user_model`) or a registered ``--backbone``."""
    if model is not None:
        from cvtools.backbones import load_user_model
        from cvtools.cli.notes import note_printer

        # its notes (an --input-size a fixed-size program ignores) as the command's one-line notes
        return load_user_model(model, architecture, classes=classes, input_size=input_size, mean=mean, std=std,
                               trust_pickle=bool(trust_pickle), multi_label=bool(multi_label), device=device,
                               fuse=not no_fuse, precision=precision, compile=compile_, tune=bool(tune),
                               on_note=note_printer())
    from cvtools.backbones import load_backbone
    from cvtools.cli.notes import note_printer

    # keys of a --weights file left out (a training script's extras) as one note, like --model's
    return load_backbone(backbone, device=device, fuse=not no_fuse, precision=precision,
                         compile=compile_, weights=weights, tune=bool(tune), on_note=note_printer())


def registered_spec(model_opts):
    """The registry spec of ``--backbone``, or None for ``--model`` (a user's network is known
    only once loaded: its layers and preprocessing come from the file)."""
    if model_opts.get("model") is not None:
        return None
    from cvtools.backbones.registry import get_spec

    return get_spec(model_opts.get("backbone") or "efficientnet_lite0")


def echo_err(message: str) -> None:
    click.echo(f"cvtools: {message}", err=True)


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def run_outputs():
    """A new :class:`~cvtools.io.naming.Outputs` for the running click command (its provenance):
    give the same object to the command's work and to :func:`run_batch`."""
    from cvtools.io.naming import Outputs

    return Outputs(provenance_from_click())


def run_batch(
    inputs: Sequence[str],
    work: Callable,
    desc: str,
    quiet: bool = False,
    provenance=None,
    outputs=None,
    on_error: Optional[Callable[[str, str], None]] = None,
) -> BatchReport:
    """:func:`cvtools.batch.run` with a progress bar and the terminal: notes on stdout, errors
    and the summary on stderr (``cvtools: error: ...``), ``--quiet`` honoured, Ctrl-C or SIGTERM
    exiting with 130. ``work`` is a callable ``work(path) -> note``, a ``StagedWork`` or a
    ``BatchedWork`` (see :mod:`cvtools.batch` for what each does and the re-run rules);
    ``outputs``: the run's :class:`~cvtools.io.naming.Outputs` (the one the work names and
    writes with; default: a new one with ``provenance``, itself defaulting to the running click
    command's). ``on_error(path, message)``: also told of each failed input (``--json`` output)."""
    # Over one screen: batch.run's callbacks wired to one progress bar and the terminal; they share the bar.
    from cvtools import batch
    from cvtools.io.naming import Outputs

    if outputs is None:
        outputs = Outputs(provenance if provenance is not None else provenance_from_click())
    bar = None
    debug = bool(os.environ.get("CVTOOLS_DEBUG"))

    def progress(finished, total):
        nonlocal bar
        if finished == 0:
            if not quiet and total > 1 and _is_terminal(sys.stderr):  # no bar debris in logs and pipes
                from tqdm import tqdm

                bar = tqdm(total=total, desc=desc, unit="img", file=sys.stderr, dynamic_ncols=True)
        elif bar is not None:
            bar.update(finished - bar.n)

    def on_done(path, note):
        if note and not quiet:
            (bar.write if bar else click.echo)(note)

    def on_fail(path, message, exc):
        from cvtools.cli.errors import file_message, flag_text
        from cvtools.errors import CvtoolsError

        message = file_message(path, message, exc)  # the options the error names, as flags
        if isinstance(exc, MemoryError):
            message = flag_text(message, batch.OUT_OF_MEMORY_PARAMS)

        if debug and exc is not None and not isinstance(exc, (CvtoolsError, MemoryError)):
            import traceback

            traceback.print_exception(type(exc), exc, exc.__traceback__)
        if bar is not None:
            bar.write(f"cvtools: error: {message}", file=sys.stderr)
        else:
            echo_err(f"error: {message}")
        if on_error is not None:
            on_error(str(path), message)

    def on_note(message):
        if quiet:
            return
        from cvtools.cli.errors import flag_text

        message = flag_text(message, ("overwrite",))  # a skip says overwrite=True: the option here
        if bar is not None:
            bar.write(f"cvtools: note: {message}", file=sys.stderr)
        else:
            echo_err(f"note: {message}")

    try:
        report = batch.run(inputs, work, outputs=outputs, on_done=on_done, on_fail=on_fail, on_note=on_note,
                           progress=progress, fatal=(click.exceptions.Exit, click.ClickException))
    except batch.Interrupted as stop:
        if bar:
            bar.close()
            bar = None
        echo_err(stop.message)
        raise click.exceptions.Exit(130)
    finally:
        if bar:
            bar.close()
    if not quiet:
        from cvtools.cli.errors import flag_text

        for line in report.closing_lines():
            echo_err(flag_text(line, ("overwrite",)))  # the library's overwrite=True, as the option
    return report


def finish(report: BatchReport):
    """Exit with the batch's status (non-zero when any input failed)."""
    raise click.exceptions.Exit(report.exit_code)
