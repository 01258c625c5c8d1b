"""DeepDream as a library job: what ``cvtools dream`` does to each photo of a folder (one dream,
an animated GIF/WebP or a numbered PNG sequence per photo), for :func:`cvtools.batch.run`."""

from __future__ import annotations

import contextlib
from pathlib import Path


def dream_work(engine, output=None, size=None, enlarge=False, seed=0, frames=1, zoom=1.05, fps=12.0, many=True,
               overwrite=False, inputs=(), quiet=False, outputs=None, max_pixels=-1, step_progress_for=None,
               protected=()):
    """The per-photo work (``work(path) -> note``): name the outputs with ``outputs`` (the run's
    :class:`~cvtools.io.naming.Outputs`), decode (``max_pixels``), shrink to ``size``, dream with
    ``engine`` (a DreamEngine, or a Deferred one), write. ``frames`` > 1: a zooming animation, into
    ``output`` when it is a .gif/.webp, else a PNG sequence in a folder. ``quiet``: no note per
    photo. ``step_progress_for(engine, x, frames, path)``: a context manager giving an object
    with ``update(n)`` per dream step (or None). ``protected``: further files no output may
    replace (the --guide image, a --model or --weights file), as the inputs."""
    from cvtools.dream.animation import ANIMATED_EXTENSIONS, VIDEO_ANIMATION_EXTENSIONS, write_dream_animation

    ext = Path(output).suffix.lower() if output is not None else None
    animated_file = ext in ANIMATED_EXTENSIONS or (frames > 1 and ext in VIDEO_ANIMATION_EXTENSIONS)
    inputs = list(inputs) + [Path(p) for p in protected]  # output_path_for refuses to replace any of them

    def work(path):
        from cvtools.deferred import resolve
        from cvtools.io.atomic import save_image
        from cvtools.io.naming import notes_held

        # "photo_dream.jpg exists ...; writing photo_dream-2.jpg" only for a dream that will be
        # written: the photo decodes and the network builds (a --layer channel range past the
        # layer's channels is refused only then), else the refusal comes alone.
        with notes_held(outputs):
            targets = _targets(path, output, frames, animated_file, many, overwrite, inputs, outputs)
            x, alpha = _load(path, size, enlarge=bool(enlarge), max_pixels=max_pixels)
            resolve(engine)
        steps = step_progress_for(engine, x, frames, path) if step_progress_for else contextlib.nullcontext(None)
        with steps as bar:
            if frames == 1:
                save_image(targets[0], engine(x, seed=seed, progress=bar), alpha=alpha, outputs=outputs)
                return None if quiet else f"{path} -> {targets[0]}"
            write_dream_animation(engine, x, frames, targets[0] if animated_file else targets, zoom_factor=zoom,
                                  seed=seed, alpha=alpha, fps=fps, progress=bar, outputs=outputs)
            where = targets[0] if animated_file else f"{targets[0].parent}/"
            return None if quiet else f"{path} -> {where} ({frames} frames)"

    return work


def _targets(path, output, frames, animated_file, many, overwrite, inputs, outputs):
    """The files one photo's dream is written to: the dream, the animation, or the PNG frames."""
    from cvtools.io.naming import output_path_for

    if frames == 1:
        return [output_path_for(path, output, "dream", many=many, overwrite=overwrite, inputs=inputs,
                                outputs=outputs)]
    if animated_file:
        return [_animation_target(path, output, overwrite, inputs, outputs)]
    folder = output or str(path.with_name(f"{path.stem}_dream"))  # a PNG sequence in a directory
    return [output_path_for(path, folder + "/", f"dream_{k:04d}", ".png", many=True, overwrite=overwrite,
                            inputs=inputs, outputs=outputs) for k in range(frames)]


def _load(path, size, enlarge=False, max_pixels=-1):
    """RGB and alpha tensors of an image, shrunk to a longer side of at most ``size`` if asked
    (scaled up to it too with ``enlarge``)."""
    from cvtools.io.decode import load_image, pil_to_tensor
    from cvtools.ops import resize_long_side

    image = load_image(path, max_pixels=max_pixels)
    check_enlarged(path, image.rgb.size, size, enlarge, max_pixels)
    rgb = resize_long_side(image.rgb, size, enlarge=enlarge)
    alpha = resize_long_side(image.alpha, size, enlarge=enlarge) if image.alpha is not None else None
    return pil_to_tensor(rgb), (pil_to_tensor(alpha) if alpha is not None else None)


def check_enlarged(path, dims, size, enlarge, max_pixels):
    """Refuse an --enlarge past the decoded-pixel limit before the resize: the guard on the file
    alone lets --size 100000 --enlarge make gigapixels, and the process is killed for memory.
    ``dims``: (width, height) of the image or of a video's frames."""
    from cvtools.errors import UsageError, safe_path
    from cvtools.io.decode import max_pixels_from_env

    w, h = dims
    if not size or not enlarge or size <= max(w, h):
        return
    limit = max_pixels_from_env() if max_pixels == -1 else max_pixels
    scale = size / max(w, h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    if limit is None or limit <= 0 or nw * nh <= limit:
        return
    def amount(n):
        return f"{n / 1e6:,.0f} megapixel" if n >= 1_000_000 else f"{n:,} pixel"

    raise UsageError(f"--size {size} would make {safe_path(Path(path).name)} {nw}x{nh} "
                     f"({amount(nw * nh)}s), over the {amount(limit)} limit; pass --max-pixels to raise it")


def _animation_target(path, output, overwrite, inputs, outputs):
    """The GIF/WebP (or video) file of an animation, with the same guards as every other output."""
    from cvtools.dream.animation import VIDEO_ANIMATION_EXTENSIONS
    from cvtools.io.naming import output_path_for

    ext = Path(output).suffix.lower()
    return output_path_for(path, output, "dream", ext, overwrite=overwrite, inputs=inputs, outputs=outputs,
                           video=ext in VIDEO_ANIMATION_EXTENSIONS)  # a video name is no image format


def dream_files(inputs, output=None, *, backbone: str = "efficientnet_lite0", size=None, enlarge: bool = False,
                seed: int = 0, frames: int = 1, zoom: float = 1.05, fps: float = 12.0, overwrite: bool = False,
                device: str = "auto", precision: str = "auto", max_pixels=-1, on_note=None, progress=None,
                **settings):
    """Dream photos and videos (files, folders, glob patterns) and write each result as
    ``cvtools dream`` does (``STEM_dream.EXT`` next to its input or in ``output``, marked,
    atomically; a re-run skips the finished ones). ``settings``: :class:`~cvtools.dream.DreamSettings`
    fields (``layers``, ``octaves``, ``steps``, ...); the rest as the command's options.
    ``on_note(message)``: notes and per-file errors; ``progress(done, total)`` after each input.
    Returns the :class:`cvtools.batch.BatchReport`."""
    from cvtools.batch import run
    from cvtools.deferred import Deferred
    from cvtools.dream import DreamSettings
    from cvtools.io.decode import checked_size
    from cvtools.io.discover import find_inputs
    from cvtools.io.naming import Outputs
    from cvtools.video.jobs import dream_maker, media_extensions, with_videos

    size = checked_size(size, 32, 100000)  # the command's --size range
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    checked = DreamSettings(**settings).validated()  # a mistake answers before any file is read

    def build():
        from cvtools.backbones import load_backbone
        from cvtools.dream import DreamEngine

        return DreamEngine(load_backbone(backbone, device=device, precision=precision), checked, on_note=on_note)

    engine = Deferred(build)  # built at the first input that needs it (none if all are done)
    found = find_inputs([str(i) for i in inputs], extensions=media_extensions())
    outputs = Outputs(dream_provenance(backbone, size=size, enlarge=enlarge, seed=seed, frames=frames, zoom=zoom,
                                       fps=fps, **settings))
    output = None if output is None else str(output)
    work = dream_work(engine, output=output, size=size, enlarge=enlarge, seed=seed, frames=frames, zoom=zoom,
                      fps=fps, many=found.many, overwrite=overwrite, inputs=found.paths, quiet=True,
                      outputs=outputs, max_pixels=max_pixels)
    work = with_videos(work, dream_maker(engine, size=size, enlarge=enlarge, seed=seed), "dream", output=output,
                       overwrite=overwrite, many=found.many, inputs=found.paths, quiet=True, outputs=outputs,
                       max_pixels=max_pixels)

    def failed(path, message, exc):
        if on_note is not None:
            on_note(message)

    return run(found, work, outputs=outputs, on_note=on_note, on_fail=failed, progress=progress)


def dream_provenance(backbone="efficientnet_lite0", size=None, enlarge=False, seed=0, frames=1, zoom=1.05, fps=12.0,
                     **settings):
    """What the outputs of :func:`dream_files` record: the provenance ``cvtools dream`` records for
    the same settings (the command line's options, as click parses them), so that a folder done
    by either is done for the other. ``settings``: DreamSettings fields as given; those no option
    sets (``margin``, ``guide_size``, ``smooth``) are recorded under their own names when they are
    not the default."""
    from cvtools.dream import DreamSettings
    from cvtools.dream.objective import parse_layer_target
    from cvtools.io.markers import Provenance

    default = DreamSettings()
    layers = settings.get("layers") or ()
    step_size = settings.get("step_size")
    options = {"--backbone": backbone, "--weights": None, "--guide": None,
               "--layer": [str(parse_layer_target(t)) for t in ((layers,) if isinstance(layers, str) else layers)],
               "--octaves": int(settings.get("octaves", default.octaves)),
               "--octave-scale": float(settings.get("octave_scale", default.octave_scale)),
               "--steps": int(settings.get("steps", default.steps)),
               "--step-size": None if step_size is None else float(step_size),
               "--jitter": int(settings.get("jitter", default.jitter)), "--size": None if size is None else int(size),
               "--seed": int(seed), "--frames": int(frames), "--zoom": float(zoom), "--fps": float(fps)}
    if enlarge:
        options["--enlarge"] = True  # an option added later: recorded only when given
    for name in ("margin", "guide_size", "smooth"):
        if name in settings and settings[name] != getattr(default, name):
            options[name] = settings[name]
    return Provenance("dream", options)
