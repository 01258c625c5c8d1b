"""Stylize as a library job: what ``cvtools stylize`` does to each photo and video of a folder,
for :func:`cvtools.batch.run`, and :func:`stylize_files`, the Python call that runs it.

>>> from cvtools import stylize_files
>>> report = stylize_files(["photos/", "clip.mp4"], style="mona", output="out/")
>>> report.done, report.failed, report.skipped

Outputs are named, marked and written as the command's are (``NAME_mona.jpg`` next to each input
or in ``output``; a re-run skips finished ones; nothing is ever written over an input).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional, Sequence, Union


def stylize_work(stylizer, output=None, size=None, strength=1.0, preserve_color=False, tile="auto", ext=None,
                 many=True, overwrite=False, inputs=(), quiet=False, tile_progress_for=None, quality=95, enlarge=False,
                 protected=(), name=None, outputs=None, max_pixels=-1):
    """Stylize's per-file work for :func:`cvtools.batch.run` (``cvtools stylize``,
    :func:`stylize_files`), in stages: name the output (main thread, input order), decode and
    resize (a loader thread), stylize (main thread: the device), encode and write atomically (a
    writer thread). ``quiet``: no note per file. ``tile_progress_for(path)``: an object that
    hears a tiled photo's progress (``progress(n)``: the tile count, then ``progress(1)`` per
    tile done; ``close()``).
    ``size``: the longest side, shrinking only unless ``enlarge``. ``protected``: further files
    no output may replace, even with ``overwrite`` (the paintings). ``name``: the style's name in
    output names (default ``stylizer.name``; give it when the stylizer is a
    :class:`~cvtools.deferred.Deferred` not to build it for naming). ``outputs``: the run's
    :class:`~cvtools.io.naming.Outputs` (pass the same one to ``run_batch``). ``max_pixels``: the
    decode limit (as :func:`~cvtools.io.decode.load_image`'s)."""
    from cvtools.batch import StagedWork
    from cvtools.io.atomic import save_image
    from cvtools.io.decode import load_image
    from cvtools.io.naming import output_path_for
    from cvtools.ops import resize_long_side

    targets = {}
    untouchable = list(inputs) + list(protected)  # one list: output_path_for indexes it once

    def prepare(path):
        targets[path] = output_path_for(path, output, name or stylizer.name, ext=ext, many=many, overwrite=overwrite,
                                        inputs=untouchable, outputs=outputs)

    def load(path):
        image = load_image(path, max_pixels=max_pixels)
        return resize_long_side(image.rgb, size, enlarge=enlarge), image.alpha

    def compute(path, item):
        rgb, alpha = item
        target = targets.pop(path)
        bar = tile_progress_for(path) if tile_progress_for is not None else None
        try:
            result = stylizer(rgb, strength=strength, preserve_color=preserve_color, tile=tile, progress=bar,
                              as_uint8=True)
        finally:
            if bar is not None:
                bar.close()
        return target, result, alpha, stylizer.last_tiles

    def save(path, pending):
        target, result, alpha, tiles = pending
        save_image(target, result, alpha=alpha, quality=quality, outputs=outputs)
        if quiet:
            return None
        return f"{path} -> {target}" + (f" ({tiles} tiles)" if tiles else "")

    return StagedWork(load=load, compute=compute, save=save, prepare=prepare)


def stylize_files(inputs: Union[str, Path, Sequence[Union[str, Path]]], style: str = "mona",
                  output: Optional[Union[str, Path]] = None, *, size: Optional[int] = None, enlarge: bool = False,
                  strength: float = 1.0, preserve_color: bool = False, tile="auto", ext: Optional[str] = None,
                  overwrite: bool = False, device: str = "auto", precision: str = "auto", tune: Optional[bool] = None,
                  max_pixels: Optional[int] = -1, on_note: Optional[Callable[[str], None]] = None,
                  progress: Optional[Callable[[int, int], None]] = None):
    """Stylize photos and videos (files, folders, glob patterns) with a bundled or trained style
    (a name, a record .json or a .safetensors) and write each result as ``cvtools stylize`` does:
    ``STEM_STYLE.EXT`` next to its input, or in ``output`` (a directory: an existing one, a path
    ending in "/", or any path for several inputs; else the file itself), tagged with the provenance marker, atomically; a re-run skips the finished ones
    (``overwrite=True`` redoes them). Options as the command's (``size``: longest side, shrinking
    only unless ``enlarge``; ``ext``: ".jpg", ".png" or ".webp", default the input's).
    ``on_note(message)``: notes (renamed and skipped outputs, per-file errors);
    ``progress(done, total)``: after each input. Returns the :class:`cvtools.batch.BatchReport`
    (``done``, ``failed``, ``skipped``); a file that fails does not stop the others."""
    from cvtools.batch import run
    from cvtools.deferred import Deferred
    from cvtools.io.discover import find_inputs
    from cvtools.io.naming import Outputs
    from cvtools.style.records import resolve_style
    from cvtools.video.jobs import media_extensions, stylize_maker, with_videos

    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    record = resolve_style(style)  # an unknown style answers now, before any file is read

    found = find_inputs([str(i) for i in inputs], extensions=media_extensions())

    def build():  # the network the command would run: the shipped ONNX graph on a CPU, else torch
        from cvtools.style.fast_cpu import torch_free_stylizer

        fast = torch_free_stylizer(record, device=device, precision=precision, compile=False, engine="pytorch",
                                   inputs=found.paths)
        if fast is not None:
            return fast
        from cvtools.style.stylize import Stylizer

        return Stylizer(record, device=device, precision=precision, tune=tune, on_note=on_note)

    stylizer = Deferred(build)  # built at the first input that needs it (none if all are done)
    outputs = Outputs(stylize_provenance(style if isinstance(style, (str, Path)) else record.name, size=size,
                                         enlarge=enlarge, strength=strength, preserve_color=preserve_color, ext=ext))
    output = None if output is None else str(output)
    work = stylize_work(stylizer, output=output, size=size, strength=strength, preserve_color=preserve_color,
                        tile=tile, ext=ext, many=found.many, overwrite=overwrite, inputs=found.paths, quiet=True,
                        enlarge=enlarge, name=record.name, outputs=outputs, max_pixels=max_pixels)
    work = with_videos(work, stylize_maker(stylizer, size=size, enlarge=enlarge, strength=strength,
                                           preserve_color=preserve_color, tile=tile, tune=tune),
                       record.name, output=output, overwrite=overwrite, many=found.many, inputs=found.paths,
                       quiet=True, outputs=outputs, max_pixels=max_pixels)

    def failed(path, message, exc):
        if on_note is not None:
            on_note(message)

    return run(found, work, outputs=outputs, on_note=on_note, on_fail=failed, progress=progress)


def stylize_provenance(style, size=None, enlarge=False, strength=1.0, preserve_color=False, ext=None):
    """What the outputs of :func:`stylize_files` record: the provenance ``cvtools stylize -s STYLE``
    records for the same settings (the command line's options, as click parses them), so that a
    folder done by either is done for the other (a re-run skips it)."""
    from cvtools.io.markers import Provenance

    options = {"--style": [str(style)], "--size": None if size is None else int(size), "--strength": float(strength),
               "--preserve-color": bool(preserve_color), "--format": "same" if ext is None else ext.lstrip(".").lower(),
               "--engine": "pytorch", "--seed": None, "--steps": None, "--style-scale": 1.0}
    if enlarge:
        options["--enlarge"] = True  # an option added later: recorded only when given
    return Provenance("stylize", options)
