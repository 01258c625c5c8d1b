"""`cvtools dream`: DeepDream, guided dreams and zooming dream animations."""

import click

from cvtools.cli.common import (
    finish,
    load_backbone_from_options,
    max_pixels_option,
    model_options,
    output_options,
    quiet_option,
    run_batch,
)
from cvtools.cli.params import (
    CHANNELS_HELP,
    ENLARGE_HELP,
    SIZE_HELP,
    AddedLaterOption,
    FiniteFloatRange,
    LayerTargetType,
    Tile,
)
from cvtools.cli.video_options import video_options

#: cvtools.dream.tiling.MIN_TILE (not imported, so `cvtools --help` stays quick;
#: tests/test_params.py keeps the two equal).
MIN_TILE = 128


@click.command()
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option("--layer", "-l", "layers", multiple=True, type=LayerTargetType(),
              help="Layer to dream with, repeatable; :CHANNELS picks some of its channels. "
                   f"{CHANNELS_HELP}. Default: the backbone's dream layers (`cvtools layers` lists them).")
@click.option("--octaves", type=click.IntRange(1, 12), default=4, show_default=True,
              help="Scales to dream at; more octaves give larger patterns.")
@click.option("--octave-scale", type=FiniteFloatRange(1.05, 4.0), default=1.4, show_default=True,
              help="Size ratio between octaves.")
@click.option("--steps", type=click.IntRange(0, 10000), default=10, show_default=True,
              help="Gradient steps per octave; more steps, stronger dream.")
@click.option("--step-size", type=FiniteFloatRange(0, min_open=True), default=None, metavar="S",
              help="Mean pixel change per step (pixels in 0-1)  [default: 0.01]")
@click.option("--jitter", type=click.IntRange(0, 512), default=32, show_default=True,
              help="Random shift (pixels) before each step; hides the network's grid.")
@click.option("--guide", type=click.Path(), metavar="IMAGE",
              help="Guided dream: grow the features of this image instead of whatever the network sees.")
@click.option("--tile", type=Tile(minimum=MIN_TILE), default="auto", show_default=True,
              help="Compute gradients in N-pixel tiles (bounded memory, no seams); auto tiles only images "
                   "too large for memory.")
@click.option("--size", type=click.IntRange(32, 100000), default=None, metavar="N",
              help=SIZE_HELP)
@click.option("--enlarge", is_flag=True, default=None, cls=AddedLaterOption, help=ENLARGE_HELP)
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed; the same seed gives the same dream.")
@click.option("--frames", type=click.IntRange(1, 100000), default=1, show_default=True,
              help="Animation: dream N frames, each the previous one zoomed in and dreamed again.")
@click.option("--zoom", type=FiniteFloatRange(1.0, 2.0), default=1.05, show_default=True,
              help="Animation: zoom factor per frame.")
@click.option("--fps", type=FiniteFloatRange(0.1, 100), default=12, show_default=True,
              help="Animation: frames per second of a GIF/WebP or video.")
@click.option("--no-cuda-graphs", is_flag=True,
              help="Run steps eagerly on the GPU instead of replaying captured CUDA graphs (for checking).")
@video_options
@output_options
@model_options
@max_pixels_option
@quiet_option
def dream(inputs, layers, octaves, octave_scale, steps, step_size, jitter, guide, tile, size, enlarge, seed, frames,
          zoom, fps, no_cuda_graphs, output, overwrite, quiet, max_pixels, start=None, duration=None, stable=None,
          **model_opts):
    """DeepDream: let the network exaggerate what it sees in images.

    Writes INPUT_dream.EXT next to each input (or into -o). Images, videos (mp4, mov, mkv,
    webm, animated GIF/WebP: INPUT_dream.mp4 with the sound), directories and globs;
    transparency is kept.

    \b
    Examples:
      cvtools dream photo.jpg                              photo_dream.jpg
      cvtools dream photo.jpg --layer blocks.8             eyes and spots everywhere
      cvtools dream photo.jpg --layer blocks.6 --steps 20  swirls and ripples
      cvtools dream photo.jpg --layer blocks.10:0-15       only some channels of a layer
      cvtools dream photo.jpg --guide flower.jpg           grow the guide's features
      cvtools dream photos/ -o dreams/ --size 1024         a folder, shrunk to at most 1024 px first
      cvtools dream photo.jpg --frames 48 --zoom 1.04 -o zoom.webp    zooming animation
      cvtools dream photo.jpg --frames 48 -o frames/       the same as a PNG sequence (or -o zoom.mp4)
      cvtools dream clip.mp4 --size 720 --octaves 2        a video: clip_dream.mp4, sound kept;
                                                           each frame grows from the last one

    \b
    Layers of the default EfficientNet-Lite0 (see `cvtools layers`):
      blocks.2-6    strokes, ripples and swirls over the whole picture
      blocks.8-10   eyes, fur and patterned skins
      blocks.10+12  the default: animal faces and creatures growing out of the photo
      blocks.13-15  fine, busy textures over a mostly intact photo

    Large images are dreamed in tiles automatically when they would not fit in memory; on a
    laptop CPU, --size 1024 keeps a dream to about a minute. Animations with few steps per
    frame (--octaves 2 --steps 5) render much faster and still flow.
    """
    import os
    from pathlib import Path

    from cvtools.cli.common import check_model_options_early, registered_spec, run_outputs
    from cvtools.cli.params import with_flag
    from cvtools.cli.video_options import frame_bars
    from cvtools.deferred import Deferred
    from cvtools.dream import DreamSettings
    from cvtools.dream.job import dream_work
    from cvtools.dream.objective import parse_layer_target
    from cvtools.errors import UsageError
    from cvtools.io.discover import find_inputs
    from cvtools.video.jobs import dream_maker, media_extensions, with_videos

    if enlarge and not size:
        raise UsageError("--enlarge goes with --size N (the size to enlarge smaller images to)")
    found = find_inputs(inputs, extensions=media_extensions(), output=output)  # once: the work and the batch share it
    paths, many = found.paths, found.many
    _check_frames_and_output(output, frames, paths, many, quiet, start, duration, max_pixels, size, enlarge)

    settings = dict(layers=tuple(layers) or None, octaves=octaves, octave_scale=octave_scale, steps=steps,
                    jitter=jitter, tile=tile, fast=False if no_cuda_graphs else None,
                    compile=bool(model_opts.get("compile_")))
    if step_size is not None:
        settings["step_size"] = step_size
    # Everything checkable without torch first: a mistake answers at once, and a run whose inputs
    # are all broken or already done never loads the network.
    settings = DreamSettings(**settings).validated()
    check_model_options_early(model_opts)
    spec = registered_spec(model_opts)  # None for --model: its layers are known once it loads
    try:
        if spec is not None:
            spec.check_layers([parse_layer_target(t).layer for t in settings.layers or ()])
    except UsageError as exc:
        raise with_flag("--layer", exc) from None
    guide_image = _load_guide(guide, max_pixels) if guide else None

    # built when the first image or frame reaches it
    engine = Deferred(lambda: _build_engine(settings, guide_image, quiet, model_opts))
    outputs = run_outputs()  # what this run names: shared by its work and run_batch
    # as stylize protects its paintings: no output may replace the guide or the network's file
    protected = [Path(p) for p in (guide, model_opts.get("model"), model_opts.get("weights"))
                 if p and os.path.isfile(p)]

    work = dream_work(engine, output=output, size=size, enlarge=bool(enlarge), seed=seed, frames=frames, zoom=zoom,
                      fps=fps, many=many, overwrite=overwrite, inputs=paths, quiet=quiet, outputs=outputs,
                      max_pixels=max_pixels, step_progress_for=None if quiet else _step_bar, protected=protected)
    work = with_videos(work, dream_maker(engine, size=size, enlarge=bool(enlarge), seed=seed, start=start,
                                         duration=duration, stable=stable),
                       "dream", output=output, overwrite=overwrite, many=many, inputs=paths, quiet=quiet,
                       outputs=outputs, max_pixels=max_pixels, progress_for=frame_bars(quiet))
    finish(run_batch(found, work, "dream", quiet=quiet, outputs=outputs))


def _check_frames_and_output(output, frames, paths, many, quiet, start, duration, max_pixels, size=None,
                             enlarge=False):
    """The torch-free checks of -o against --frames and the inputs, notes for the animation
    options that do nothing here, a --start past a lone clip's end (before the output is named
    and announced: "writing clip_dream.mp4" came before the error), videos --enlarge'd too far."""
    from pathlib import Path

    from cvtools.dream.animation import ANIMATED_EXTENSIONS
    from cvtools.errors import UsageError
    from cvtools.video.jobs import is_video_input

    animated_file = output is not None and Path(output).suffix.lower() in ANIMATED_EXTENSIONS
    if animated_file and frames == 1 and not any(is_video_input(p) for p in paths):
        raise UsageError(f"-o {output}: a GIF/WebP animation needs --frames N (N > 1)")
    if animated_file and many:
        raise UsageError(f"-o {output} names one animation, but there are {len(paths)} inputs; "
                         "give a directory instead")
    _check_animation_output(output, frames, paths)
    if not quiet:
        _note_unused_options(frames, paths)
    if start and len(paths) == 1 and is_video_input(paths[0]):
        from cvtools.video.io import check_range, probe_video

        check_range(probe_video(paths[0], max_pixels=max_pixels), start, duration)
    if enlarge and size:
        _check_enlarged_videos([p for p in paths if is_video_input(p)], size, max_pixels)


def _check_enlarged_videos(videos, size, max_pixels):
    """--size N --enlarge on a video: its frames held to the pixel limit as a photo is (they were
    enlarged past it, and the decoder failed or the memory ran out). A clip that cannot be probed
    is left to its own turn in the batch, which names what is wrong with it."""
    from cvtools.dream.job import check_enlarged
    from cvtools.errors import CvtoolsError
    from cvtools.video.io import probe_video

    for path in videos:
        try:
            info = probe_video(path, max_pixels=max_pixels)
        except CvtoolsError:
            continue
        check_enlarged(path, info.display_size, size, True, max_pixels)


def _check_animation_output(output, frames, paths):
    """-o anim.mp4 / anim.jpg for a photo's --frames animation used to become a folder of that name
    holding PNG frames: a video name is one video (of one photo), an image name other than
    GIF/WebP is refused. A name without a media extension stays the PNG folder."""
    from pathlib import Path

    from cvtools.dream.animation import ANIMATED_EXTENSIONS, VIDEO_ANIMATION_EXTENSIONS
    from cvtools.errors import UsageError
    from cvtools.io.discover import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS
    from cvtools.video.jobs import is_video_input

    if output is None or frames == 1 or Path(output).is_dir() or all(is_video_input(p) for p in paths):
        return
    ext = Path(output).suffix.lower()
    if ext in VIDEO_ANIMATION_EXTENSIONS and len(paths) > 1:
        raise UsageError(f"-o {output} names one animation, but there are {len(paths)} inputs; "
                         "give a directory instead")
    if ext in (IMAGE_EXTENSIONS | VIDEO_EXTENSIONS) - set(ANIMATED_EXTENSIONS + VIDEO_ANIMATION_EXTENSIONS):
        raise UsageError(f"-o {output}: a --frames animation is written as .gif, .webp, .mp4, .mov, .mkv or "
                         ".webm, or as PNG frames into a folder (-o NAME without an extension)")


def _note_unused_options(frames, paths):
    """One line for animation options that do nothing here (they were ignored without a word):
    --zoom/--fps without --frames on photos, --frames on a video (its frames are the clip's)."""
    from click.core import ParameterSource

    from cvtools.video.jobs import is_video_input

    ctx = click.get_current_context()
    given = [f"--{name}" for name in ("zoom", "fps") if ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE]
    videos = [p for p in paths if is_video_input(p)]
    if given and frames == 1 and len(videos) < len(paths):
        click.echo(f"cvtools: note: {' and '.join(given)} only {'shape' if len(given) > 1 else 'shapes'} a --frames N animation; "
                   "without --frames a photo gives one dream", err=True)
    if frames > 1 and videos:
        click.echo("cvtools: note: --frames makes a zooming animation of a photo; a video is dreamed "
                   "frame by frame, and --frames does nothing for it", err=True)


def _build_engine(settings, guide_image, quiet, model_opts):
    """The DreamEngine the command runs: the network of the model options, the --layer channels
    checked against it, the guide image, notes above the progress bars (none with -q)."""
    import sys

    from cvtools.cli.params import with_flag
    from cvtools.dream import DreamEngine
    from cvtools.dream.objective import resolve_layer_targets
    from cvtools.errors import UsageError
    from cvtools.io.decode import pil_to_tensor

    def note(message):
        if not quiet:
            from tqdm import tqdm

            tqdm.write(f"cvtools: note: {message}", file=sys.stderr)

    backbone = load_backbone_from_options(**model_opts)
    try:  # the channels exist in this layer: known once the network is built
        resolve_layer_targets(backbone, settings.layers)
    except UsageError as exc:
        raise with_flag("--layer", exc) from None
    guide_tensor = pil_to_tensor(guide_image) if guide_image is not None else None
    return DreamEngine(backbone, settings, guide=guide_tensor, on_note=note)


def _load_guide(guide, max_pixels):
    """The --guide image (RGB, PIL: decoded without torch); any problem (a directory, a missing
    or damaged file) is one line naming it."""
    from cvtools.errors import ImageError, UsageError, safe_path
    from cvtools.io.decode import load_image

    try:
        return load_image(guide, max_pixels=max_pixels).rgb
    except ImageError as exc:
        hint = "; --guide takes one image file" if "directory" in exc.reason else ""
        raise UsageError(f"--guide {safe_path(guide)}: {exc.reason}{hint}", param=exc.params) from None


def _step_bar(engine, x, frames, path):
    """A progress bar over every step of every octave (and frame) of one image, on stderr when it
    is a terminal (logs and pipes get no bar debris): ``dream_work``'s ``step_progress_for``."""
    import contextlib
    import sys

    from cvtools.cli.common import _is_terminal

    if not _is_terminal(sys.stderr):
        return contextlib.nullcontext(None)
    from tqdm import tqdm

    total = engine.total_steps(*x.shape[-2:]) * frames
    return tqdm(total=total, desc=path.name, unit="step", file=sys.stderr, dynamic_ncols=True, leave=False)
