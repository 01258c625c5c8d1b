"""``cvtools stylize`` and ``cvtools styles``: apply and list trained styles."""

import json
import sys
from pathlib import Path

import click

from cvtools.cli.common import (
    echo_err,
    finish,
    max_pixels_option,
    output_options,
    quiet_option,
    run_batch,
    run_outputs,
    tune_option,
)
from cvtools.cli.params import ENLARGE_HELP, SIZE_HELP, AddedLaterOption, FiniteFloatRange, Tile
from cvtools.cli.video_options import video_options

#: Tiles are at least twice cvtools.style.stylize.TILE_OVERLAP (not imported: that loads torch,
#: and `cvtools --help` stays instant; tests/test_params.py keeps the two equal).
MIN_TILE = 256
#: cvtools.style.arbitrary_fit's FIT_STEPS and MAX_FIT_STEPS (not imported, as above; tests keep
#: them equal)
FIT_STEPS, MAX_FIT_STEPS = 100, 5000
#: ... and its NETWORK_FIT_STEPS
NETWORK_FIT_STEPS = 150
#: photos (or first frames of videos) among the inputs that a painting is fitted on
FIT_PHOTOS = 4

@click.command()
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option("--style", "-s", multiple=True, metavar="NAME|PATH",
              help="A bundled style (see `cvtools styles`; default mona), a style you trained (NAME.json or "
                   "NAME.safetensors), or ANY PAINTING as an image file (painting.jpg): painted in one pass by "
                   "cvtools' any-painting network, no training needed. Repeat to blend paintings and bundled "
                   "styles, NAME:WEIGHT to weigh them: -s mona:0.7 -s painting.jpg:0.3.")
@click.option("--size", type=click.IntRange(16, 32768), metavar="LONG_SIDE",
              help=f"{SIZE_HELP} Smaller sizes give bolder, larger brush strokes.")
@click.option("--enlarge", is_flag=True, default=None, cls=AddedLaterOption, help=ENLARGE_HELP)
@click.option("--strength", type=FiniteFloatRange(0.0, 1.0), default=1.0, show_default=True,
              help="0 returns the input, 1 the full style. For paintings and blends the style itself is "
                   "weakened in between (strokes keep their shape, at lower contrast); a bundled style alone is "
                   "mixed with the photo unless --strength-mode style.")
@click.option("--strength-mode", type=click.Choice(["style", "pixels"]), default=None, cls=AddedLaterOption,
              help="How --strength below 1 mixes: 'style' interpolates between the photo's own style and the "
                   "painting's (the default for paintings and blends; a bundled style is then painted by the "
                   "any-painting network, less boldly than by its own); 'pixels' lays the full-strength picture "
                   "over the photo (the default for a bundled style alone; styles from train-style always).")
@click.option("--preserve-color", is_flag=True, help="Keep the photo's colours; take only the style's light and texture.")
@click.option("--refine", is_flag=True, default=None, cls=AddedLaterOption,
              help="Paintings only: after the network, optimise the picture itself against the painting(s) "
                   "(closer to the painting, with its own colours and strokes; seconds on a GPU, tens of "
                   "seconds on a laptop per photo). --strength then mixes pixels.")
@click.option("--fit", "fit_steps", type=click.IntRange(1, MAX_FIT_STEPS), is_flag=False, flag_value=FIT_STEPS,
              default=None, metavar="[N]", cls=AddedLaterOption,
              help=f"Paintings only: first fit the network to each painting for N steps (default {FIT_STEPS}) on "
                   f"the first {FIT_PHOTOS} inputs, then paint every photo or frame at network speed. Closer to "
                   "the painting's colours and strokes; once per painting: seconds on a GPU, about half a "
                   "minute per 100 steps on a laptop. Pays off for folders and videos.")
@click.option("--fit-network", "fit_network_steps", type=click.IntRange(1, MAX_FIT_STEPS), is_flag=False,
              flag_value=NETWORK_FIT_STEPS, default=None, metavar="[N]", cls=AddedLaterOption,
              help=f"One painting only, instead of --fit: fit every weight of the network to it, not only its "
                   f"style parameters, for N steps (default {NETWORK_FIT_STEPS}). Closer still to the painting's "
                   "strokes and palette; a few seconds on a GPU, about a minute on a laptop.")
@click.option("--painting-size", type=click.IntRange(64, 4096), default=None, metavar="PX", cls=AddedLaterOption,
              help="Paintings only: the long side, in pixels, a painting is read at for its style (default 512, "
                   "the scale the any-painting network learned strokes at). Larger paints finer strokes and "
                   "dots (Seurat's grande_jatte: about 1024), smaller bolder ones. Bundled styles in a blend keep "
                   "their own scale.")
@click.option("--steps", type=click.IntRange(0, 100000), metavar="N",
              help="With --refine (implies it): optimisation steps at the coarsest size (each finer size gets "
                   "0.35 of the one before; default 100). More: closer to the painting, slower.")
@click.option("--style-scale", type=FiniteFloatRange(0.05, 8.0), default=1.0, show_default=True,
              help="With --refine (implies it): stroke size, relative to the photo (1: the painting is seen at "
                   "the photo's size). 2 paints strokes twice as big, 0.5 half as big. Raise it for small photos "
                   "and for paintings made of fine dots (Seurat), whose points vanish at 1.")
@click.option("--seed", type=int, metavar="N", help="With --refine (implies it): the random seed (default 0; same "
                                                    "seed, same result).")
@click.option("--tile", type=Tile(minimum=MIN_TILE), default="auto", show_default=True,
              help="Stylize in overlapping N-pixel tiles, blended without seams. auto: only when the image "
                   "would not fit in memory. Trained styles only: paintings and blends always go whole.")
@click.option("--device", default="auto", show_default=True, help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N, mps.")
@click.option("--precision", type=click.Choice(["auto", "fp32", "fp16", "bf16"]), default="auto",
              show_default=True,
              help="auto: fp16 on GPU; on CPU bf16 where it is native (AMX, AVX512-BF16), else fp32.")
@click.option("--compile/--no-compile", "compile_", default=None,
              help="torch.compile the network: slow first image, faster after (many same-size images on a GPU). "
                   "Default: on CUDA, sizes this machine has compiled before (`cvtools bench --warm`, or an earlier "
                   "--compile run) switch to the compiled network once a folder or video has run as long as "
                   "loading it takes; --no-compile: never.")
@tune_option
@click.option("--engine", type=click.Choice(["pytorch", "onnxruntime"]), default="pytorch", show_default=True,
              help="onnxruntime: run the style's ONNX export on the CPU (exported once and cached; paintings and "
                   "blends through the any-painting network's two graphs; needs pip install 'cvtools[onnx]'). "
                   "Bundled styles, paintings and blends on the CPU take their shipped ONNX graphs anyway when "
                   "onnxruntime is installed (no torch to load; folders of over 16 photos, --fit and --refine "
                   "excepted; CVTOOLS_TORCH_FREE=0 turns that off). BENCHMARKS.md compares their speed.")
@click.option("--format", "fmt", type=click.Choice(["same", "jpg", "png", "webp"]), default="same", show_default=True,
              help="Output format: 'same' keeps each input's format.")
@video_options
@output_options
@max_pixels_option
@quiet_option
def stylize(inputs, style, size, enlarge, strength, strength_mode, preserve_color, refine, fit_steps,
            fit_network_steps, painting_size,
            steps, style_scale, seed, tile, device, precision, compile_, tune, engine, fmt, output, overwrite, quiet, max_pixels, start=None,
            duration=None, stable=None):
    """Repaint photos in the style of a painting (fast neural style transfer).

    INPUT can be photos, videos (mp4, mov, mkv, webm, animated GIF/WebP), directories (searched
    recursively) or glob patterns. Each result is written next to its input as NAME_STYLE.EXT
    (a video as NAME_STYLE.mp4, with its sound; or into -o); inputs are never overwritten.

    \b
    Examples:
      cvtools stylize photo.jpg --style starry_night
      cvtools stylize photo.jpg -s painting.jpg --strength 0.5  half-strength strokes
      cvtools stylize photo.jpg -s scream --preserve-color      keep the photo's colours
      cvtools stylize holiday/ -s mona -o stylized/              a whole folder
      cvtools stylize clip.mp4 -s starry_night                   a video: clip_starry_night.mp4, sound kept
      cvtools stylize clip.mp4 --start 1:30 --duration 10 --stable   10 s of it, strokes held steady
      cvtools stylize big.tif -s composition_vii --tile 1024     tiled, seamless
      cvtools stylize photo.jpg --style my_style.safetensors     a style from `cvtools train-style`
      cvtools stylize photo.jpg --style painting.jpg             any painting, in one pass
      cvtools stylize photo.jpg -s painting.jpg --refine         ... then optimised towards it (slower)
      cvtools stylize clip.mp4 -s painting.jpg --fit             fitted to the painting once, then fast
      cvtools stylize photos/ -s painting.jpg --fit-network      every weight fitted: closer still (GPU)
      cvtools stylize photo.jpg -s seurat.jpg --painting-size 1024   finer strokes and dots
      cvtools stylize photo.jpg -s mona:0.7 -s painting.jpg:0.3  a blend of a bundled style and a painting
      cvtools styles                                             list the bundled styles
    """
    # Over one screen: the torch-free checks of the options, in the order the user reads them, then the job.
    from pathlib import Path

    from cvtools.cli.video_options import frame_bars, note_video_options_unused
    from cvtools.deferred import Deferred
    from cvtools.device import check_device_early
    from cvtools.errors import UsageError
    from cvtools.io.discover import find_inputs
    from cvtools.style.job import stylize_work
    from cvtools.video.jobs import media_extensions, stylize_maker, with_videos

    if fit_steps and fit_network_steps:
        raise UsageError("--fit and --fit-network are two kinds of fit: give one (--fit-network N sets its steps)")
    fit_network = bool(fit_network_steps)
    fit_steps = fit_steps or fit_network_steps
    if enlarge and not size:
        raise UsageError("--enlarge goes with --size N (the size to enlarge smaller images to)")
    style = style or ("mona",)
    refine = bool(refine) or steps is not None or seed is not None or style_scale != 1.0
    # before torch loads: a typo costs no start-up
    plan = checked_styles(style, strength=strength, strength_mode=strength_mode, refine=refine, max_pixels=max_pixels)
    if plan.network:
        if tile not in ("auto", None):
            raise UsageError("--tile is for trained styles; paintings and blends go whole (use --size to make "
                             "large photos smaller)")
        if engine != "pytorch" and refine:
            raise UsageError("--engine onnxruntime runs the network alone, not --refine")
        if refine and compile_:
            raise UsageError("--compile is for the network alone, not with --refine")
        if fit_network and (len(plan.sources) != 1 or isinstance(plan.sources[0][1], str)):
            raise UsageError("--fit-network fits one painting: give a single painting file as --style "
                             "(a blend's paintings can each be fitted with --fit)")
        if fit_network and refine:
            raise UsageError("--fit-network is for the network alone, not with --refine")
        if fit_steps and engine != "pytorch":
            raise UsageError("--fit trains on the PyTorch engine; leave --engine onnxruntime out")
        if fit_steps and all(isinstance(source, str) for _, source, _ in plan.sources):
            raise UsageError("--fit fits the network to painting files; bundled styles have their own networks")
        if painting_size and all(isinstance(source, str) for _, source, _ in plan.sources):
            raise UsageError("--painting-size sets how painting files are read; bundled styles keep their own scale")
        tile = None
    elif fit_steps or fit_network:
        raise UsageError(f"--fit{'-network' if fit_network else ''} is for paintings (an image file as --style), "
                         "not a trained style")
    elif painting_size:
        raise UsageError("--painting-size is for paintings (an image file as --style), not a trained style")
    for line in [] if quiet else plan.note_lines:  # after the options' errors: an error stays one line
        echo_err(f"note: {line}")
    name = plan.name
    if plan.network and (strength_mode or "style") == "style" and not refine:
        mix_strength, pixel_strength = strength, 1.0  # in style space, inside the network
    else:
        mix_strength, pixel_strength = 1.0, strength

    # Built when the first photo or frame reaches it: a missing or broken input, or a re-run
    # whose outputs are all there, answers without loading torch and the network.
    if engine == "onnxruntime":
        from cvtools.export import check_onnxruntime_options, require_onnxruntime

        check_onnxruntime_options(device, precision, compile_)
        require_onnxruntime()  # a missing package is one line now, not at the first photo
    check_device_early(device)
    stylizer = Deferred(lambda: _build_stylizer(plan, paths, device=device, precision=precision, compile_=compile_,
                                                tune=tune, engine=engine, quiet=quiet, refine=refine,
                                                style_scale=style_scale, steps=steps, seed=seed,
                                                mix_strength=mix_strength, fit_steps=fit_steps,
                                                fit_network=fit_network, painting_size=painting_size,
                                                max_pixels=max_pixels))
    found = find_inputs(inputs, extensions=media_extensions(), output=output)  # once: the work and the batch share it
    paths, many = found.paths, found.many
    note_video_options_unused(paths, quiet)
    protected = [Path(label) for label, source, _ in plan.sources if not isinstance(source, str)]
    outputs = run_outputs()  # what this run names: shared by its work and run_batch
    work = stylize_work(stylizer, name=name, output=output, size=size, enlarge=bool(enlarge),
                        strength=pixel_strength, preserve_color=preserve_color, tile=tile,
                        ext=None if fmt == "same" else f".{fmt}", many=many, overwrite=overwrite, inputs=paths,
                        quiet=quiet, tile_progress_for=TileBar if len(paths) == 1 and not quiet else None,
                        protected=protected, outputs=outputs,
                        max_pixels=max_pixels, device=device)
    work = with_videos(work, stylize_maker(stylizer, size=size, enlarge=bool(enlarge), strength=pixel_strength,
                                           preserve_color=preserve_color, tile=tile, start=start, duration=duration,
                                           stable=stable, tune=tune or None),
                       name, output=output, overwrite=overwrite, many=many, inputs=paths, quiet=quiet,
                       outputs=outputs, max_pixels=max_pixels, progress_for=frame_bars(quiet))
    finish(run_batch(found, work, f"stylize {name}", quiet=quiet, outputs=outputs))


def _build_stylizer(plan, paths, *, device, precision, compile_, tune, engine, quiet, refine, style_scale, steps,
                    seed, mix_strength, fit_steps=None, painting_size=None, max_pixels=-1, fit_network=False):
    """The network ``cvtools stylize`` runs for ``plan`` (a trained style: the shipped ONNX graph on a
    CPU, onnxruntime or PyTorch; paintings and blends: the any-painting network, refined or at
    ``mix_strength`` in style space), its notes on the terminal; built at the first input that
    needs it (``paths``: the inputs, for the torch-free choice)."""
    from pathlib import Path

    from cvtools.cli.notes import note_printer
    from cvtools.style.fast_cpu import torch_free_stylizer

    sources = _network_sources(plan)
    if plan.network:
        from cvtools.style.fast_cpu_painting import torch_free_painting_stylizer

        fast = torch_free_painting_stylizer(sources, device=device,
                                            precision=precision, compile=compile_, engine=engine, inputs=paths,
                                            painting_size=painting_size, fitting=bool(fit_steps or fit_network),
                                            refining=refine, on_note=note_printer(quiet), name=plan.name)
    else:
        fast = torch_free_stylizer(plan.record, device=device, precision=precision, compile=compile_, engine=engine,
                                   inputs=paths)
    if plan.network and fast is not None:  # paintings on the CPU: the shipped graphs, no torch
        built = StyleSpaceStrength(fast, mix_strength)
    elif plan.network:
        from cvtools.style.painting import NetworkPaintingStylizer, RefinedPaintingStylizer

        if engine == "onnxruntime":
            from cvtools.style.onnx_arbitrary import OnnxArbitraryStylizer as NetworkPaintingStylizer  # noqa: N814
        fit = {} if not fit_steps else dict(fit_steps=fit_steps, fit_photos=fit_photos(paths, max_pixels),
                                            fit_network=fit_network,
                                            fit_progress=None if quiet else FitBar(
                                                [Path(label).stem for label, source, _ in plan.sources
                                                 if not isinstance(source, str)]))
        built = NetworkPaintingStylizer(sources, name=plan.name,
                                        device=device, precision=precision, compile=compile_,
                                        on_note=note_printer(quiet), painting_size=painting_size, **fit)
        if refine:
            built = RefinedPaintingStylizer(built, sources,
                                            style_scale=style_scale, **({} if steps is None else {"steps": steps}))
            built.seed = 0 if seed is None else seed
            built.callback = None if quiet else StepBar()
        else:
            built = StyleSpaceStrength(built, mix_strength)
    elif fast is not None:  # a bundled style on the CPU: its shipped ONNX graph, no torch
        built = fast
    elif engine == "onnxruntime":
        from cvtools.style.onnxruntime_engine import OnnxRuntimeStylizer

        built = OnnxRuntimeStylizer(plan.record, device=device, precision=precision, compile=compile_,
                                    on_note=note_printer(quiet))
    else:
        from cvtools.style.stylize import Stylizer

        built = Stylizer(plan.record, device=device, precision=precision, compile=compile_, tune=tune or None)
    built.on_note = note_printer(quiet)
    return built


def _network_sources(plan) -> list:
    """[(source, weight)] for the any-painting network. A bundled name goes as its stored
    embedding where a file of that name is in this folder: the library reads a name that is an
    existing file as that painting, and a bare name means the bundled style (checked_styles)."""
    out = []
    for _, source, weight in plan.sources:
        if isinstance(source, str) and Path(source).is_file():
            from cvtools.style.arbitrary import bundled_style_embedding

            source = bundled_style_embedding(source)
        out.append((source, weight))
    return out


class StyleSpaceStrength:
    """A network stylizer whose every call paints at one strength in style space (the CLI's
    ``--strength``); the strength the batch and video code pass (1, unless ``--strength-mode
    pixels`` asked for it) then mixes the picture's pixels with the photo's, as it does for a
    trained style."""

    def __init__(self, stylizer, strength: float):
        self.stylizer = stylizer
        self.strength = strength

    def __getattr__(self, name):
        return getattr(self.stylizer, name)

    def __setattr__(self, name, value):
        if name in ("stylizer", "strength"):
            object.__setattr__(self, name, value)
        else:
            setattr(self.stylizer, name, value)

    def __call__(self, image, strength: float = 1.0, **kwargs):
        if strength == 0.0 or self.strength == 0.0:
            return self.stylizer(image, strength=0.0, **kwargs)
        out = self.stylizer(image, strength=self.strength, **kwargs)
        return out if strength >= 1.0 else pixel_mix(image, out, strength)


def pixel_mix(image, out, strength: float):
    """``image + strength·(out − image)``: a painted picture mixed with its photo, in the picture's
    own form (an RGB PIL image, a 3×H×W uint8 tensor, or floats in [0, 1]); 8 bits are rounded
    once, after the mix. (A PIL result comes from the torch-free path: numpy only.)"""
    import numpy as np
    from PIL import Image

    if isinstance(out, Image.Image):  # (a tensor has .mode and .size too: methods)
        photo = np.asarray(image if image.mode == "RGB" else image.convert("RGB"), dtype=np.float32)
        mixed = photo + np.float32(strength) * (np.asarray(out, dtype=np.float32) - photo)
        return Image.fromarray(np.clip(np.rint(mixed), 0, 255).astype(np.uint8), "RGB")
    import torch

    from cvtools.io.decode import pil_to_tensor, to_uint8

    photo = image if torch.is_tensor(image) else pil_to_tensor(image if image.mode == "RGB" else image.convert("RGB"))
    photo = photo[0] if photo.dim() == 4 else photo
    photo = photo.float().div(255.0) if photo.dtype == torch.uint8 else photo.float()
    painted = out.float().div(255.0) if out.dtype == torch.uint8 else out.float()
    mixed = (photo.to(painted.device) + strength * (painted - photo.to(painted.device))).clamp(0, 1)
    return to_uint8(mixed) if out.dtype == torch.uint8 else mixed


class StylePlan:
    """What ``--style`` asked for, read without torch: a trained network (``record``) or the
    any-painting network with its ``sources`` [(label, source, weight)], a source being a
    painting (PIL, read and checked) or a bundled style's name; ``name`` goes into output names."""

    def __init__(self, record=None, sources=(), name="", note_lines=()):
        self.record = record
        self.sources = list(sources)
        self.name = name
        #: lines for the user (``cvtools: note: ...``): what was read differently than it may look
        self.note_lines = list(note_lines)

    @property
    def network(self) -> bool:
        return self.record is None


def checked_styles(styles, strength: float = 1.0, strength_mode: str = "style", refine: bool = False,
                   max_pixels: int = -1) -> StylePlan:
    """The --style values checked and read without torch (a typo or a bad file is one line before
    the model libraries spend seconds loading). One trained style alone (at full strength, or
    mixing pixels) runs its own network; paintings, blends, and bundled styles below full
    strength in style space run the any-painting network. A UsageError names the value for a
    painting that cannot be read or is too small, a weight on a lone trained style, a style from
    train-style in a blend, and --refine without painting files. Paintings are read under
    ``max_pixels`` (--max-pixels) as the photos are."""
    from cvtools.errors import UsageError, WeightsError, safe_path
    from cvtools.style.records import (
        bare_bundled_name,
        is_painting,
        parse_style_spec,
        resolve_style,
        shadowed_file_note,
    )

    specs = [parse_style_spec(s) for s in styles]
    for path, _ in specs:
        _not_an_export(path)
    notes = list(dict.fromkeys(note for note in map(shadowed_file_note, (p for p, _ in specs)) if note))
    is_image = [is_painting(p) for p, _ in specs]
    lone = len(specs) == 1 and not is_image[0]
    if len(specs) == 1 and (specs[0][1] != 1.0 or styles[0] != specs[0][0]):
        raise UsageError(f"{safe_path(styles[0])}: a weight (NAME:W) is only for blending styles; "
                         "--strength weakens a single style")
    # a bundled style alone keeps its trained network unless style space is asked for: the
    # any-painting network paints the bundled paintings less boldly (QUALITY.md: 0.8-2.9x their
    # trained networks' style distance), so by default its strength mixes pixels as before
    bundled_alone = lone and bare_bundled_name(specs[0][0]) is not None
    wants_network = not lone or (strength < 1.0 and strength_mode == "style" and bundled_alone)
    if not wants_network:
        if refine:
            raise UsageError("--refine, --steps, --seed and --style-scale are for paintings (an image file as "
                             f"--style), not for the trained style {safe_path(styles[0])}")
        record = resolve_style(styles[0])
        if not record.weights_path.exists():
            owner = f"{safe_path(record.path)}: its " if getattr(record, "path", None) else ""
            raise WeightsError(f"{owner}{'w' if owner else safe_path(record.weights_path) + ': w'}eights file "
                               f"{safe_path(record.weights_path) + ' ' if owner else ''}is missing")
        if strength < 1.0 and strength_mode == "style" and not bundled_alone:  # said, not silently ignored
            notes.append(f"--strength-mode style: {safe_path(styles[0])} is a style from train-style, painted by "
                         f"its own network at full strength; --strength {strength:g} mixes its pixels with the photo")
        return StylePlan(record=record, name=record.name, note_lines=notes)
    sources = _network_sources_checked(specs, is_image, refine=refine, max_pixels=max_pixels)
    name = "+".join(dict.fromkeys(Path(label).stem if label != source else label for label, source, _ in sources))
    return StylePlan(sources=sources, name=name, note_lines=notes)


def _network_sources_checked(specs, is_image, refine: bool, max_pixels: int) -> list:
    """[(label, source, weight)] for the any-painting network: paintings read and checked,
    bundled styles by name; a style from train-style is refused (it has no place in a blend)."""
    from cvtools.errors import ImageError, UsageError, safe_path
    from cvtools.style.records import bundled_names, load_painting, resolve_style

    sources = []
    for (path, weight), image in zip(specs, is_image):
        if image:
            try:
                sources.append((path, load_painting(path, max_pixels=max_pixels), weight))
            except ImageError as exc:
                raise UsageError(f"--style {safe_path(path)}: {exc.reason}", param=exc.params) from None
            continue
        record = resolve_style(path)  # one line for an unknown name, with suggestions
        if record.name not in bundled_names() or Path(path).suffix:
            # (a lone trained style never comes here: its --strength mixes pixels, so only a blend does)
            raise UsageError(f"--style {safe_path(path)}: a style from train-style cannot be blended (only "
                             "paintings and bundled styles can); use it alone")
        if refine:
            raise UsageError(f"--refine optimises against painting files; {record.name}'s painting does not "
                             "ship with cvtools: give the painting's image file instead")
        sources.append((record.name, record.name, weight))
    return sources


def _not_an_export(path) -> None:
    """A UsageError for an ONNX file (from ``cvtools export``) given as --style: it would be
    read as a painting and refused as "not a recognised image file"."""
    from pathlib import Path

    from cvtools.errors import UsageError, safe_path
    from cvtools.style.records import bundled_name, bundled_names

    p = Path(str(path))
    if p.suffix.lower() != ".onnx":
        return
    stem = p.stem[:-len("_fp16")] if p.stem.endswith("_fp16") else p.stem
    name = bundled_name(stem, bundled_names()) or "NAME"
    raise UsageError(f"--style {safe_path(path)}: an .onnx file is not a style; to run a style through onnxruntime "
                     f"give its name (or its record .json) with --engine onnxruntime: -s {name} --engine onnxruntime")


def fit_photos(paths, max_pixels=-1, limit: int = FIT_PHOTOS, side: int = 1024) -> list:
    """Up to ``limit`` of the inputs as PIL images at most ``side`` px long (a video: its first
    frame), for fitting a painting to; inputs that do not decode are left to the run to report."""
    from PIL import Image

    from cvtools.errors import CvtoolsError
    from cvtools.io.decode import load_image
    from cvtools.ops import resize_long_side
    from cvtools.video.io import is_video, read_frames

    photos = []
    for path in paths:
        if len(photos) >= limit:
            break
        try:
            if is_video(path):
                photos.append(Image.fromarray(next(iter(read_frames(path, size=side, max_pixels=max_pixels))).rgb))
            else:
                photos.append(resize_long_side(load_image(path, max_pixels=max_pixels).rgb, side, enlarge=False))
        except (CvtoolsError, OSError, StopIteration):
            continue
    if not photos:
        from cvtools.errors import UsageError

        raise UsageError("--fit needs at least one input photo or video that decodes")
    return photos


class FitBar:
    """A tqdm bar over one painting's fitting steps, with the loss (the stylizer's fit_progress):
    a :class:`StepBar` per painting, named after it. ``names``: the paintings' names in the order
    they are fitted (the stylizer gets them decoded, so it would call each one "painting")."""

    def __init__(self, names=()):
        self.steps = StepBar()
        self.names = list(names)
        self.fitting = -1  # which of them
        self.last = 0

    def __call__(self, label, done, total, loss):
        if self.fitting < 0 or done <= self.last:  # the first painting, or the next one's first step
            self.fitting += 1
        self.last = done
        if 0 <= self.fitting < len(self.names):
            label = self.names[self.fitting]
        self.steps.desc = f"fitting {label}"
        self.steps(done, total, loss)

    def close(self):
        self.steps.close()


class TileBar:
    """A tiled photo's progress as a tqdm bar in tiles (``stylize_work``'s ``tile_progress_for``),
    drawn only on a terminal."""

    def __init__(self, path):
        self.name = path.name
        self.bar = None

    def __call__(self, n):
        if n:  # the tile count (again after a fallback to smaller tiles: a new bar)
            import sys

            from tqdm import tqdm

            self.close()
            self.bar = tqdm(total=n, desc=f"{self.name} tiles", unit="tile", file=sys.stderr, dynamic_ncols=True,
                            disable=None)  # None: drawn only on a terminal
        elif self.bar is not None:
            self.bar.update(1)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class StepBar:
    """A tqdm bar over one picture's optimisation steps, with the loss (PaintingStylizer's
    callback); a new picture starts a new bar."""

    def __init__(self, desc: str = "optimising"):
        self.bar = None
        self.done = 0
        self.desc = desc

    def __call__(self, done, total, loss):
        import sys

        from tqdm import tqdm

        if self.bar is None or done < self.done:
            self.close()
            self.bar = tqdm(total=total, desc=self.desc, unit="step", file=sys.stderr, dynamic_ncols=True,
                            leave=False, disable=None)  # None: drawn on a terminal only, never into logs
            self.done = 0
        self.bar.update(done - self.done)
        self.done = done
        if loss is not None:
            self.bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
        if done >= total:
            self.close()

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


@click.command()
@click.option("--json", "as_json", is_flag=True,
              help="The full records as a JSON list; with --sheet, the sheet written as a JSON object (photo, "
                   "sheet, styles, width, height, tile).")
@click.option("-v", "--verbose", is_flag=True, help="Also the training recipe and quality numbers.")
@click.option("--sheet", "sheet_photo", metavar="PHOTO",
              help="Instead: draw PHOTO in every bundled style, one labelled grid (PHOTO_styles.jpg, or -o).")
@click.option("-o", "--output", metavar="FILE", help="With --sheet: where the sheet goes.")
@click.option("--size", type=click.IntRange(64, 2048), default=384, show_default=True,
              help="With --sheet: the longer side of each tile (larger photos are shrunk, smaller kept; one "
                   "under 128 px on its shorter side is enlarged to it, so the labels fit).")
@click.option("--overwrite", is_flag=True, help="With --sheet: replace an existing sheet.")
def styles(as_json, verbose, sheet_photo, output, size, overwrite):
    """List the bundled styles: painting, artist, year and how each was trained; or, with
    --sheet, draw your photo in each of them to choose one.

    \b
    Examples:
      cvtools styles
      cvtools styles -v                  recipe and measured quality too
      cvtools styles --json | jq '.[].name'
      cvtools styles --sheet photo.jpg   photo_styles.jpg: the photo in every style
    """
    from cvtools.style.records import bundled_records

    if sheet_photo is None and (output or overwrite):
        raise click.UsageError("-o and --overwrite go with --sheet PHOTO")
    records = bundled_records()
    if sheet_photo is not None:
        _write_sheet(sheet_photo, records, output, size, overwrite, as_json)
        return
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in records], indent=2, ensure_ascii=False))
        return
    if not records:
        echo_err("no bundled styles are installed")
        raise click.exceptions.Exit(1)
    width = max(len(r.name) for r in records)
    measured = [r.quality for r in records if isinstance(r.quality.get("gram_reduction_mean"), (int, float))]
    for r in records:
        q = r.quality.get("gram_reduction_mean")
        quality = f"  (Gram distance -{q:.0%})" if isinstance(q, (int, float)) else ""
        click.echo(f"{r.name:<{width}}  {r.summary()}{quality}")
        if verbose:
            rec = r.recipe
            train = r.training
            click.echo(f"{'':<{width}}    trained: {rec.get('steps')} steps × {rec.get('batch_size')} at "
                       f"{rec.get('image_size')} px on {rec.get('backbone')}, style weight {rec.get('style_weight')}, "
                       f"seed {rec.get('seed')}; {train.get('device', '?')}, {train.get('date', '?')}")
            steady = rec.get("temporal_weight")
            click.echo(f"{'':<{width}}    video: " + (f"a steady network (stability term {steady:g} in training: a "
                                                       "slightly moved photo gives the same strokes, moved)"
                                                       if steady else "frame by frame it flickers more; --stable "
                                                       "holds its strokes"))
            if r.quality:
                click.echo(f"{'':<{width}}    quality: Gram distance to the painting cut by "
                           f"{r.quality.get('gram_reduction_mean', 0):.0%} on {r.quality.get('photos')} held-out photos, "
                           f"content distance {r.quality.get('content_distance_mean', 0):.3f}")
            src = r.provenance.get("source")
            if src:
                click.echo(f"{'':<{width}}    style image: {src}")
    if measured:
        q = measured[0]
        click.echo(f"\nGram distance -N%: the stylized photo's distance to the painting, against the photo's own "
                   f"(1 - stylized/photo), through {q.get('independent_backbone', 'an independent network')} "
                   f"(which no style was trained with), mean of {q.get('photos', '?')} held-out photos; "
                   "QUALITY.md has the details.")
    click.echo(f"\nUse: cvtools stylize PHOTO --style NAME   ({len(records)} styles)")


def _write_sheet(photo_path, records, output, size, overwrite, as_json=False):
    """``styles --sheet``: the photo in every bundled style, written like every other output
    (never over the photo, an existing file only with --overwrite, a provenance marker).
    ``as_json``: the sheet described as one JSON object instead of the line saying it."""
    from pathlib import Path

    from cvtools.cli.common import _is_terminal, provenance_from_click
    from cvtools.io.atomic import save_image
    from cvtools.io.decode import load_image
    from cvtools.io.naming import Outputs, OutputSkipped, output_path_for

    photo = load_image(photo_path).rgb  # one line naming the file for anything unreadable
    outputs = Outputs(provenance_from_click(), batch=[Path(photo_path)])
    try:
        target = output_path_for(Path(photo_path), output, "styles", ext=".jpg", overwrite=overwrite,
                                 inputs=[Path(photo_path)], outputs=outputs)
    except OutputSkipped as done:  # the same sheet is there: nothing to do, not an error
        from cvtools.cli.errors import flag_text

        click.echo(f"cvtools: note: {flag_text(str(done), ('overwrite',))}", err=True)
        if as_json:
            _sheet_json(photo_path, done.target or output, records, photo.size, size, written=False)
        return
    from cvtools.style.sheet import style_sheet

    show = _is_terminal(sys.stderr)
    sheet = style_sheet(photo, records, size=size,
                        progress=(lambda name: click.echo(f"  {name}...", err=True)) if show else None,
                        on_note=lambda text: click.echo(f"cvtools: note: {photo_path}: {text}", err=True))
    save_image(target, sheet, quality=90, outputs=outputs)
    if as_json:
        _sheet_json(photo_path, target, records, photo.size, size, written=True)
    else:
        click.echo(f"{photo_path} -> {target} ({len(records)} styles)")


def _sheet_json(photo_path, target, records, photo_size, size, written: bool) -> None:
    """``styles --sheet --json``: the sheet (made now, or there already) as one JSON object."""
    from PIL import Image

    from cvtools.style.sheet import tile_size

    with Image.open(target) as im:
        width, height = im.size
    click.echo(json.dumps({"photo": str(photo_path), "sheet": str(target), "written": written,
                           "styles": [r.name for r in records], "width": width, "height": height,
                           "tile": list(tile_size(*photo_size, size=size))}, ensure_ascii=False))
