"""``cvtools train-style``: train a fast style network from one painting and a folder of photos."""

import click

from cvtools.cli.common import BACKBONE_HELP, echo_err, max_pixels_option, quiet_option


@click.command("train-style")
@click.argument("style_image", type=click.Path(dir_okay=False), metavar="STYLE_IMAGE")
@click.option("--photos", required=True, type=click.Path(file_okay=False), metavar="DIR",
              help="Folder of training photos (searched recursively; a few hundred varied photos work well).")
@click.option("--name", help="Style name (file names, the suffix of stylized images). Default: the style image's "
                             "name (with --resume: the checkpoint's).")
@click.option("-o", "--output", metavar="DIR",
              help="Where NAME.safetensors, NAME.json, NAME.ckpt and NAME_previews/ go. Default: the current "
                   "folder (with --resume: the checkpoint's folder).")
@click.option("--overwrite", is_flag=True,
              help="Start again over an earlier run's NAME.json/.safetensors/.ckpt in -o (without it they are never replaced).")
@click.option("--backbone", "-b", default="efficientnet_lite0", show_default=True, help=BACKBONE_HELP)
@click.option("--weights", "backbone_weights", metavar="PATH|random",
              help="Backbone weights file (e.g. a VGG-16 state dict you have); default: the pretrained ones.")
@click.option("--steps", type=click.IntRange(1), default=4000, show_default=True, help="Optimisation steps.")
@click.option("--batch-size", type=click.IntRange(1), default=16, show_default=True,
              help="Photos per step (raise it on big GPUs: 64 is fast on an H100).")
@click.option("--image-size", type=click.IntRange(32), default=256, show_default=True, help="Training crop side in pixels.")
@click.option("--style-size", type=click.IntRange(32), default=512, show_default=True,
              help="Longer side of the painting when its Gram matrices are taken: smaller gives larger brush strokes.")
@click.option("--content-weight", type=float, default=1.0, show_default=True, help="How much the photo's content must survive.")
@click.option("--style-weight", type=float, default=10.0, show_default=True, help="How strongly to match the painting.")
@click.option("--tv-weight", type=float, default=1e-4, show_default=True, help="Smoothness prior (against speckle).")
@click.option("--temporal-weight", type=float, default=0.0, show_default=True,
              help="Steadiness for video: the output of a slightly moved photo must be the moved output "
                   "(0: off). 50-200 measured: 0.4-0.25 of the flicker, style kept (bundled starry_night: 50).")
@click.option("--style-layers", metavar="L1,L2,...", help="Backbone layers for the style loss (default: the backbone's; see `cvtools layers`).")
@click.option("--layer-weights", metavar="W1,W2,...", help="Relative weight of each style layer (default: equal).")
@click.option("--content-layer", metavar="LAYER", help="Backbone layer for the content loss (default: the backbone's).")
@click.option("--lr", type=float, default=1e-3, show_default=True, help="Adam learning rate (warm-up, then cosine decay).")
@click.option("--width", type=click.FloatRange(0.125, 4.0), default=0.5, show_default=True,
              help="Network width (1.0 = Johnson et al.'s 32/64/128 channels; 0.5 is ~3.6x faster to run).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for the network and the data order.")
@click.option("--checkpoint-every", type=click.IntRange(0), default=500, show_default=True, metavar="N",
              help="Save a resumable checkpoint every N steps (also on Ctrl-C / SIGTERM).")
@click.option("--resume", type=click.Path(dir_okay=False), metavar="CHECKPOINT",
              help="Continue the run in NAME.ckpt (same data order; --steps may be raised). Options left out are the "
                   "run's; a different painting, photos or recipe is refused (see the next option).")
@click.option("--resume-with-new-settings", "resume_new", type=click.Path(dir_okay=False), metavar="CHECKPOINT",
              help="Continue the network and optimizer in NAME.ckpt with the settings given now (another painting, "
                   "batch size, --lr, --style-weight...); the record lists what changed at which step.")
@click.option("--preview", type=click.Path(dir_okay=False), metavar="IMAGE",
              help="Photo to stylize into NAME_previews/ as training goes (default: the first training photo).")
@click.option("--preview-every", type=click.IntRange(0), metavar="N",
              help="Write a preview every N steps (0: never). Default: about 8 previews over the run.")
@click.option("--workers", type=click.IntRange(0), help="DataLoader worker processes decoding photos (default: CPUs - 1, at most 8).")
@click.option("--device", default="auto", show_default=True, help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N.")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), default="auto", show_default=True,
              help="auto: bf16 autocast on GPUs, fp32 on the CPU.")
@click.option("--compile/--no-compile", "compile_", default=None,
              help="torch.compile the style network: ~40 s to start, then ~2x the images/s. "
                   "Default: on for GPU runs of 2000+ steps (where it pays for itself).")
@click.option("--gpus", type=click.IntRange(1), default=1, show_default=True, metavar="N",
              help="Train on N GPUs of this machine (DistributedDataParallel via torchrun; --batch-size stays the "
                   "global batch). Same as: torchrun --nproc-per-node N -m cvtools train-style ...")
@click.option("--title", default="", help="Painting title, for the style record.")
@click.option("--artist", default="", help="Painter, for the style record.")
@click.option("--year", default="", help="Year of the painting, for the style record.")
@max_pixels_option
@quiet_option
@click.pass_context
def train_style(ctx, style_image, photos, name, output, overwrite, backbone, backbone_weights, steps, batch_size,
                image_size, style_size, content_weight, style_weight, tv_weight, temporal_weight, style_layers, layer_weights,
                content_layer, lr, width, seed, checkpoint_every, resume, resume_new, preview, preview_every, workers,
                device, precision, compile_, gpus, title, artist, year, max_pixels, quiet):
    """Train a fast style network: one painting, a folder of photos.

    Writes NAME.safetensors (the network, fp16) and NAME.json (the style record) into -o; use
    them with `cvtools stylize PHOTO --style DIR/NAME.json`. Watch NAME_previews/ as it learns.
    Ctrl-C saves a checkpoint; --resume NAME.ckpt continues the same run. An earlier run's files
    are never replaced without --overwrite.

    \b
    Examples:
      cvtools train-style starry.jpg --photos photos/ --name starry -o styles/
      cvtools train-style starry.jpg --photos photos/ --steps 300 --batch-size 4 --image-size 192   a quick try (CPU)
      cvtools train-style starry.jpg --photos photos/ --name starry --steps 8000 --batch-size 64
      cvtools train-style starry.jpg --photos photos/ --resume styles/starry.ckpt --steps 8000     longer
      cvtools train-style starry.jpg --photos photos/ --resume-with-new-settings styles/starry.ckpt --style-weight 30
      cvtools train-style wave.jpg --photos photos/ --style-weight 30 --style-size 384     bolder
      cvtools train-style art.jpg --photos photos/ -b vgg16 --weights vgg16.pth            on VGG-16
      cvtools train-style starry.jpg --photos photos/ --batch-size 64 --gpus 2             two GPUs (DDP)
    """
    # Over one screen: the options become one TrainConfig, field by field.
    import sys
    from pathlib import Path

    from cvtools import distributed

    if gpus > 1 and not distributed.launched_by_torchrun():
        _check_gpus(gpus)
        raise click.exceptions.Exit(distributed.relaunch_with_torchrun(gpus, distributed.strip_gpus_option(sys.argv[1:])))

    from click.core import ParameterSource

    from cvtools.cli.notes import note_printer
    from cvtools.errors import UsageError
    from cvtools.style.train import TrainConfig, TrainingStopped
    from cvtools.style.train import train_style as run

    if resume and resume_new:
        raise UsageError("give --resume or --resume-with-new-settings, not both")
    checkpoint = resume or resume_new
    if output is None:
        output = str(Path(checkpoint).parent) if checkpoint else "."

    def floats(text, what):
        try:
            return [float(v) for v in text.split(",")] if text else None
        except ValueError:
            raise UsageError(f"--{what} takes comma-separated numbers, not {text!r}") from None

    config = TrainConfig(
        style_image=style_image, photos=photos, name=name, output=output,
        backbone=backbone, backbone_weights=backbone_weights,
        style_layers=[s.strip() for s in style_layers.split(",")] if style_layers else None,
        style_layer_weights=floats(layer_weights, "layer-weights"), content_layer=content_layer,
        content_weight=content_weight, style_weight=style_weight, tv_weight=tv_weight, temporal_weight=temporal_weight, steps=steps,
        batch_size=batch_size, image_size=image_size, style_size=style_size, lr=lr, seed=seed, width=width,
        checkpoint_every=checkpoint_every, preview_every=preview_every, preview=preview, device=device,
        precision=precision, workers=workers, compile=compile_, title=title, artist=artist, year=year)
    # options given on the command line (not click's defaults): on resume, the others are the run's
    fields = {"layer_weights": "style_layer_weights", "compile_": "compile"}
    given = {fields.get(k, k) for k in ctx.params if ctx.get_parameter_source(k) != ParameterSource.DEFAULT}
    # -q hides the progress bar and the summary, not the notes: a photo left out of training
    # changes what the style learns from, so it is always said (as a batch's failed file is)
    bar = None if quiet else TrainBar(config)
    try:
        result = run(config, resume=checkpoint, overwrite=overwrite, new_settings=bool(resume_new),
                     settings_given=given, progress=bar, on_note=note_printer(), max_pixels=max_pixels)
    except TrainingStopped as exc:
        from cvtools.cli.errors import cli_message

        echo_err(cli_message(exc))
        raise click.exceptions.Exit(exc.exit_code)
    finally:
        if bar is not None:
            bar.close()
    if not quiet:
        losses = ", ".join(f"{k} {v:.4f}" for k, v in result.final_losses.items())
        # a resumed run: the steps it did itself (its rates are of those alone)
        done = result.steps - result.first_step
        span = f" (steps {result.first_step + 1}-{result.steps})" if result.first_step else ""
        click.echo(f"trained {done} steps{span} ({_rate(result.images_per_second)} images/s overall, "
                   f"{_rate(result.steady_images_per_second)} after warm-up): {losses}")
        click.echo(f"wrote {result.weights} and {result.record_path}")
        click.echo(f"try it: cvtools stylize PHOTO --style {result.record_path}")


def _rate(rate: float) -> str:
    """An images/s figure: a slow run's (a CPU, a few steps) keeps a decimal instead of reading 0."""
    return f"{rate:.{0 if rate >= 10 else 1}f}"


def _check_gpus(gpus: int) -> None:
    """--gpus N needs N CUDA GPUs here: without them torchrun would start N CPU processes, each
    training and reporting the same run."""
    import torch

    from cvtools.errors import UsageError

    have = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if have < gpus:
        raise UsageError(f"gpus {gpus} needs {gpus} CUDA GPUs; this machine has {have}", param="gpus")


#: a run projected to take longer than this gets one note on how to try the painting quickly
LONG_RUN_SECONDS = 3600
#: how often a run with no terminal (piped, logged) prints a plain progress line
PLAIN_LINE_SECONDS = 30.0
QUICK_TRY = "--steps 300 --batch-size 4 --image-size 192"


def _duration(seconds: float) -> str:
    """'about 33 h' / '12 min' / '40 s': a projection's size, not its precision."""
    if seconds >= 5400:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


class TrainBar:
    """train_style's progress callback: a tqdm bar over the run's steps, with the latest
    losses and images/s, on a terminal; without one (piped, logged), a plain line every
    :data:`PLAIN_LINE_SECONDS` instead of silence until the end. A run projected past
    :data:`LONG_RUN_SECONDS` (the defaults are a GPU's: about 33 h on a laptop CPU) gets one
    note with settings for a quick try."""

    def __init__(self, config):
        self.config = config  # its name is known once train_style has settled it
        self.bar = None
        self.advised = False
        self.last_line = None

    def __call__(self, step, steps, losses):
        import sys

        from tqdm import tqdm

        if self.bar is None:  # the first call gives the starting step (a resumed run's)
            self.bar = tqdm(total=steps, initial=step, desc=f"train {self.config.name}", unit="step",
                            file=sys.stderr, dynamic_ncols=True, disable=None)
            self.first = step
        self.bar.update(step - self.bar.n)
        if not losses:
            return
        rate = losses["images_per_second"]
        left = (steps - step) * self.config.batch_size / rate if rate > 0 else 0.0
        self._advise(step, steps, left)
        text = (f"style {losses['style']:.3f} content {losses['content']:.3f} "
                f"{rate:.{0 if rate >= 10 else 1}f} img/s")
        if not self.bar.disable:
            self.bar.set_postfix_str(text)
            return
        import time

        now = time.monotonic()
        if self.last_line is None or now - self.last_line >= PLAIN_LINE_SECONDS:
            self.last_line = now
            print(f"train {self.config.name}: step {step}/{steps}, {text}, about {_duration(left)} left",
                  file=sys.stderr, flush=True)

    def _advise(self, step, steps, left: float) -> None:
        """Once, from a rate measured over a few steps: a run this long on this machine is rarely
        what a first try wants."""
        if self.advised or step - self.first < 5 or left < LONG_RUN_SECONDS:
            return
        import sys

        from tqdm import tqdm

        self.advised = True
        tqdm.write(f"cvtools: note: at this speed the {steps - step} steps left take about {_duration(left)} "
                   f"here (the defaults are sized for a GPU); a quick try: {QUICK_TRY}; Ctrl-C keeps a "
                   "checkpoint that --resume continues", file=sys.stderr)

    def close(self):
        if self.bar is not None:
            self.bar.close()
