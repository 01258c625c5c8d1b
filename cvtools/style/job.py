"""Stylize as a library job: what ``cvtools stylize`` does to each photo and video of a folder,
for :func:`cvtools.batch.run`, and :func:`stylize_files`, the Python call that runs it.

>>> from cvtools import stylize_files
>>> report = stylize_files(["photos/", "clip.mp4"], style="mona", output="out/")
>>> report.done, report.failed, report.skipped

Outputs are named, marked and written as the command's are (``NAME_mona.jpg`` next to each input
or in ``output``; a re-run skips finished ones; nothing is ever written over an input).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

from cvtools.batch import StagedWork

#: Photos per forward pass: unset, up to :data:`CUDA_BATCH` when the network runs on CUDA and one
#: at a time elsewhere; 1 (or 0) one at a time everywhere; N up to N on any device.
BATCH_ENV = "CVTOOLS_STYLIZE_BATCH"
#: Photos per forward pass on CUDA when nobody says (fewer where memory is short): the batch a
#: video's 1080p frames run, so ``cvtools bench --warm`` compiles it for both.
CUDA_BATCH = 8
#: A batch's copy back from the GPU queued, its bytes waited for by the writer that saves them
#: (:class:`cvtools.style.stylize.QueuedPicture`), so the device loop uploads and launches the
#: next batch meanwhile. Measured on an H100 (session t, 2026-12-07, 160 1080p JPEGs, interleaved;
#: benchmarks/plans/session_t/queued_copy_back.md): mona 90.4/93.0 -> 93.5/94.0 photos/s, the
#: any-painting network 95.6 -> 106.8, outputs identical to the bit, the CUDA test passing.
QUEUED_COPY_BACK = True


def stylize_work(stylizer, output=None, size=None, strength=1.0, preserve_color=False, tile="auto", ext=None,
                 many=True, overwrite=False, inputs=(), quiet=False, tile_progress_for=None, quality=95, enlarge=False,
                 protected=(), name=None, outputs=None, max_pixels=-1, device=None, batch=None, gpu_jpeg=None):
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
    decode limit (as :func:`~cvtools.io.decode.load_image`'s).

    On a GPU: ``device`` (the device the stylizer was asked for: "auto", "cuda", ...; None: not
    said, or a built stylizer's own): on CUDA the loader and writer pools grow with the host's
    cores (:func:`cvtools.batch.default_io_threads`; ``CVTOOLS_IO_THREADS`` still decides).
    ``batch``: photos per forward pass (None: ``$CVTOOLS_STYLIZE_BATCH``, else up to
    :data:`CUDA_BATCH` as memory allows when the network is a
    :class:`~cvtools.style.stylize.Stylizer` on CUDA, one at a time elsewhere); consecutive
    photos of one size that go whole share a pass (8 bits up, converted there, one copy back per
    batch), tiled and tiny ones go one at a time as before. ``gpu_jpeg``: JPEG decoded and
    encoded by nvJPEG in batched runs on CUDA (None: ``$CVTOOLS_GPU_JPEG``, off unless set; see
    :mod:`cvtools.io.gpu_jpeg` for which files and what changes). Decoding runs in worker
    processes (:mod:`cvtools.io.decode_pool`: the loader threads' Pillow calls share the GIL with
    the device loop) when ``$CVTOOLS_DECODE_PROCESSES`` says how many (0: the loader threads, as
    before), else on CUDA for a folder of 64 photos or more on a host of 8 CPUs or more; the
    results are the same to the bit. The work's ``close()`` ends the workers (else its garbage
    collection or the program's exit does)."""
    from cvtools.batch import Grouping, default_io_threads
    from cvtools.io.decode_pool import decode_processes

    on_gpu = _expects_cuda(stylizer, device)
    processes = decode_processes(on_gpu, _photo_count(inputs))
    stages = _StylizeStages(stylizer, dict(output=output, size=size, strength=strength,
                                           preserve_color=preserve_color, tile=tile, ext=ext, many=many,
                                           overwrite=overwrite, quiet=quiet, tile_progress_for=tile_progress_for,
                                           quality=quality, enlarge=enlarge, name=name, outputs=outputs,
                                           max_pixels=max_pixels, batch=batch, gpu_jpeg=gpu_jpeg,
                                           decode_processes=processes),
                            untouchable=list(inputs) + list(protected))  # one list: output_path_for indexes it once
    # a loader thread waits for one worker at a time: at least as many loaders as workers
    threads = processes if processes > default_io_threads(on_gpu) else None
    return _StylizeStagedWork(load=stages.load, compute=stages.compute, save=stages.save, prepare=stages.prepare,
                              group=Grouping(stages.key, stages.compute_batch), on_gpu=on_gpu, threads=threads)


class _StylizeStagedWork(StagedWork):
    """:func:`stylize_work`'s work: a :class:`~cvtools.batch.StagedWork` whose ``close()`` ends
    its decoding processes now (else they end when the work is collected or the program exits)."""

    def close(self):
        self.load.__self__.close()


def _photo_count(inputs) -> int:
    """The photos among a run's inputs (its videos left out): what decides whether a folder is big
    enough to decode in worker processes."""
    import os

    from cvtools.io.discover import VIDEO_EXTENSIONS

    return sum(os.path.splitext(str(p))[1].lower() not in VIDEO_EXTENSIONS for p in inputs)


def _expects_cuda(stylizer, device) -> bool:
    """Whether the network will run on CUDA, known without building it or importing torch: a
    built stylizer's device, else the device named (``auto``: a machine with an NVIDIA driver)."""
    from cvtools.deferred import Deferred

    if not isinstance(stylizer, Deferred) or stylizer.built:
        return getattr(getattr(stylizer, "device", None), "type", None) == "cuda"
    if device is None:
        return False
    kind = str(device).split(":")[0]
    if kind == "auto":
        import sys

        from cvtools.device import expects_gpu

        return sys.platform != "darwin" and expects_gpu("auto")
    return kind == "cuda"


def _batch_setting(batch) -> Optional[int]:
    """Photos per forward pass asked for (``batch``, else ``$CVTOOLS_STYLIZE_BATCH``), None: not said."""
    import os

    if batch is not None:
        return max(1, int(batch))
    text = os.environ.get(BATCH_ENV, "").strip()
    if not text:
        return None
    try:
        return max(1, int(text))
    except ValueError:
        from cvtools.errors import UsageError

        raise UsageError(f"{BATCH_ENV}={text!r} is not a number of photos") from None


class _Photo:
    """A loaded photo: Pillow's RGB and alpha (None for a JPEG left to the GPU to decode), and for
    batches its 8 bits (H×W×3, pinned for a GPU) or its file's bytes (``jpeg``); ``size`` (h, w).
    A photo a worker process decoded for a batch comes as its 8 bits alone: ``rgb`` is made from
    them when asked for (the one-photo path, a batch's fallback)."""

    __slots__ = ("_rgb", "alpha", "pixels", "jpeg", "size")

    def __init__(self, rgb, alpha=None, pixels=None, jpeg=None, size=None):
        self._rgb, self.alpha, self.pixels, self.jpeg = rgb, alpha, pixels, jpeg
        self.size = size if size is not None else (rgb.height, rgb.width)

    @property
    def rgb(self):
        if self._rgb is None and self.pixels is not None:
            import numpy as np
            from PIL import Image

            self._rgb = Image.fromarray(np.asarray(self.pixels), "RGB")  # a copy: the pixels stay as they are
        return self._rgb


class _Plan:
    """How photos go through the built stylizer, decided once (main thread, first photo): ``most``
    photos per pass (1: one at a time, through ``stylizer(...)`` as always), pinned host pixels,
    JPEG decode and encode on the device."""

    def __init__(self, built, most=1, pin=False, decode=False, encode=False):
        self.built, self.most, self.pin, self.decode, self.encode = built, most, pin, decode, encode
        self.limits = {}  # (h, w) -> photos per pass at that size

    def limit(self, h, w) -> int:
        if (h, w) not in self.limits:
            self.limits[(h, w)] = self.built.batch_limit(h, w, self.most)
        return self.limits[(h, w)]


def _plan_for(built, batch, gpu_jpeg) -> _Plan:
    import sys

    # the torch networks that paint a batch in one pass: the bundled styles' and the any-painting
    # network's (a module not imported means the stylizer is not of it: the torch-free path)
    classes = [getattr(sys.modules.get(module), name, None) for module, name in
               (("cvtools.style.stylize", "Stylizer"), ("cvtools.style.painting", "NetworkPaintingStylizer"))]
    if not any(c is not None and isinstance(built, c) for c in classes):
        return _Plan(built)
    cuda = built.device.type == "cuda"
    asked = _batch_setting(batch)
    most = (CUDA_BATCH if cuda else 1) if asked is None else asked
    if most <= 1:
        return _Plan(built)
    from cvtools.io import gpu_jpeg as codec

    decode, encode = codec.gpu_jpeg_modes(gpu_jpeg) if cuda else (False, False)
    if (decode or encode) and not codec.available(built.device):
        decode = encode = False
    return _Plan(built, most=most, pin=cuda, decode=decode, encode=encode)


def _host_pixels(rgb, pin: bool):
    """A Pillow RGB image's 8 bits, H×W×3: a pinned tensor (for an asynchronous copy to a GPU) or
    a numpy array."""
    import numpy as np

    if not pin:
        return np.array(rgb, dtype=np.uint8)
    return _pinned_copy(np.asarray(rgb, dtype=np.uint8))


def _pinned_copy(pixels):
    """An H×W×3 uint8 array copied into a pinned tensor."""
    import torch

    t = torch.empty(pixels.shape, dtype=torch.uint8, pin_memory=True)
    t.numpy()[...] = pixels
    return t


class _Queued:
    """A result whose copy back from the GPU is queued (:class:`cvtools.style.stylize.QueuedPicture`):
    the writer waits for it, not the thread that drives the device."""

    __slots__ = ("picture",)

    def __init__(self, picture):
        self.picture = picture


def _is_tensor(value) -> bool:
    """Whether ``value`` is a torch tensor, without importing torch where it was not (the torch-free path)."""
    import sys

    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


class _Encoded:
    """A result already encoded as a JPEG file on the device."""

    __slots__ = ("data",)

    def __init__(self, data):
        self.data = data


class _StylizeStages:
    """The stages of :func:`stylize_work` (see there), and its grouping of same-size photos."""

    def __init__(self, stylizer, options, untouchable):
        self.stylizer, self.untouchable = stylizer, untouchable
        self.decode_processes = 0
        self.__dict__.update(options)
        self.targets = {}
        self.plan: Optional[_Plan] = None  # set at the first photo (main thread); loaders read it
        self.pool = None  # the decoding processes, started by the first loader that needs them
        self.pool_lock = threading.Lock()

    def prepare(self, path):
        from cvtools.io.naming import output_path_for

        self.targets[path] = output_path_for(path, self.output, self.name or self.stylizer.name, ext=self.ext,
                                             many=self.many, overwrite=self.overwrite, inputs=self.untouchable,
                                             outputs=self.outputs)

    def load(self, path):
        plan = self.plan
        if plan is not None and plan.decode:
            photo = self._routed_jpeg(path)
            if photo is not None:
                return photo
        pool = self._decoders()
        if pool is not None:
            from cvtools.io.decode_pool import PoolUnavailable

            try:
                return self._decoded_elsewhere(pool, path, plan)
            except PoolUnavailable:  # workers that cannot start or keep dying: the threads decode
                self.close()
        rgb, alpha = self._decoded(path)
        photo = _Photo(rgb, alpha)
        if plan is not None and plan.most > 1:
            photo.pixels = _host_pixels(rgb, plan.pin)
        return photo

    def _decoders(self):
        """The decoding processes (started at the first call), or None: this thread decodes."""
        if self.decode_processes <= 0:
            return None
        with self.pool_lock:
            if self.pool is None:
                import weakref

                from cvtools.io.decode_pool import DecodePool, PoolUnavailable

                try:
                    self.pool = DecodePool(self.decode_processes)
                except PoolUnavailable:
                    self.decode_processes = 0
                    return None
                weakref.finalize(self, self.pool.close)  # the run's end (or the program's) ends them
            return self.pool

    def _decoded_elsewhere(self, pool, path, plan) -> _Photo:
        """What :meth:`load` gives, decoded by a worker process: the same pixels, alpha and size.
        For a batch only the 8 bits are copied out of the shared block (into pinned memory for a
        GPU); the one-photo path gets Pillow's RGB."""
        from PIL import Image

        from cvtools.io.decode import max_pixels_from_env

        limit = max_pixels_from_env() if self.max_pixels == -1 else self.max_pixels
        with pool.decode(path, limit, self.size, self.enlarge) as decoded:
            alpha = None
            if decoded.alpha is not None:
                h, w = decoded.alpha.shape
                alpha = Image.frombytes("L", (w, h), decoded.alpha.tobytes())
            h, w = decoded.rgb.shape[:2]
            if plan is not None and plan.most > 1:
                pixels = _pinned_copy(decoded.rgb) if plan.pin else decoded.rgb.copy()
                return _Photo(None, alpha, pixels=pixels, size=(h, w))
            return _Photo(Image.frombytes("RGB", (w, h), decoded.rgb.tobytes()), alpha)

    def close(self):
        """End the decoding processes, if any; later photos decode in the loader threads."""
        with self.pool_lock:
            pool, self.pool, self.decode_processes = self.pool, None, 0
        if pool is not None:
            pool.close()

    def _decoded(self, path):
        from cvtools.io.decode_pool import decode_resized  # what a worker process runs, too

        return decode_resized(path, self.max_pixels, self.size, self.enlarge)

    def _routed_jpeg(self, path) -> Optional[_Photo]:
        """The photo as its JPEG bytes when nvJPEG may decode it as Pillow would (and no resize,
        no limit is in the way: those go the host's way, which also says what is wrong)."""
        import os
        import stat

        from cvtools.io.decode import MAX_ASPECT_RATIO, max_pixels_from_env
        from cvtools.io.gpu_jpeg import route_jpeg

        try:
            if not stat.S_ISREG(os.stat(path).st_mode):
                return None
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            return None
        route = route_jpeg(data)
        w, h = route.width, route.height
        limit = max_pixels_from_env() if self.max_pixels == -1 else self.max_pixels
        if not route.device or (limit and limit > 0 and w * h > limit) or max(w, h) > MAX_ASPECT_RATIO * min(w, h):
            return None
        if self.size and abs(self.size / max(w, h) - 1.0) >= 1e-6 and (self.size < max(w, h) or self.enlarge):
            return None  # resized on the host (Pillow's Lanczos) as always
        return _Photo(None, jpeg=data, size=(h, w))

    def compute(self, path, photo):
        """One photo through ``stylizer(...)``: the path of every photo on a CPU, and of tiled,
        tiny and lone ones anywhere."""
        rgb = photo.rgb if photo.rgb is not None else self._decoded(path)[0]
        target = self.targets.pop(path)
        bar = self.tile_progress_for(path) if self.tile_progress_for is not None else None
        try:
            result = self.stylizer(rgb, strength=self.strength, preserve_color=self.preserve_color, tile=self.tile,
                                   progress=bar, as_uint8=True)
        finally:
            if bar is not None:
                bar.close()
        return target, result, photo.alpha, self.stylizer.last_tiles

    def key(self, path, photo):
        """(size, photos per pass) for a photo that may share a forward pass, else None."""
        from cvtools.deferred import resolve

        if self.plan is None:
            self.plan = _plan_for(resolve(self.stylizer), self.batch, self.gpu_jpeg)  # builds it: first photo
        plan = self.plan
        if plan.most <= 1:
            return None
        h, w = photo.size
        if not plan.built.batchable(h, w, self.strength, self.tile):
            return None
        most = plan.limit(h, w)
        return ((h, w), most) if most > 1 else None

    def compute_batch(self, paths, photos):
        """Same-size photos through the network in one pass (see :meth:`Stylizer.stylize_batch`)."""
        plan = self.plan
        images = self._device_inputs(photos)
        encode = [plan.encode and self.targets[p].suffix.lower() in (".jpg", ".jpeg") for p in paths]
        queued = QUEUED_COPY_BACK and not any(encode)
        outs = plan.built.stylize_batch(images, strength=self.strength, preserve_color=self.preserve_color,
                                        on_device=any(encode), queued=queued)
        if any(encode):
            outs = self._encoded(outs, encode)
        elif queued:
            outs = [_Queued(out) if not _is_tensor(out) else out for out in outs]
        return [(self.targets.pop(p), out, photo.alpha, 0) for p, out, photo in zip(paths, outs, photos)]

    def _device_inputs(self, photos):
        """What :meth:`Stylizer.stylize_batch` takes: JPEGs decoded on the device (one batched
        call), the host's pixels for the others."""
        images = [p.pixels for p in photos]
        routed = [i for i, p in enumerate(photos) if p.jpeg is not None]
        if routed:
            from cvtools.io.gpu_jpeg import decode_on_device

            for i, t in zip(routed, decode_on_device([photos[i].jpeg for i in routed], self.plan.built.device)):
                if tuple(t.shape) != (3, *photos[i].size):
                    raise ValueError(f"nvJPEG decoded {tuple(t.shape)} for a {photos[i].size} frame header")
                images[i] = t.permute(1, 2, 0)  # H×W×3, as the host's pixels
        return [image if image is not None else _host_pixels(p.rgb, False) for image, p in zip(images, photos)]

    def _encoded(self, outs, encode):
        """Device results to save: JPEG bytes (nvJPEG, one call) where ``encode`` says, on the CPU
        otherwise (and a float result, which saving refuses)."""
        from cvtools.io.gpu_jpeg import encode_on_device

        chosen = [i for i, out in enumerate(outs) if encode[i] and not out.dtype.is_floating_point]
        done = dict(zip(chosen, encode_on_device([outs[i] for i in chosen], self.quality))) if chosen else {}
        return [_Encoded(done[i]) if i in done else out.cpu() for i, out in enumerate(outs)]

    def save(self, path, pending):
        from cvtools.io.atomic import save_image, save_jpeg_bytes

        target, result, alpha, tiles = pending
        if isinstance(result, _Queued):
            result = result.picture.get()  # waits here, in a writer thread, for its batch's copy back
        if isinstance(result, _Encoded):
            save_jpeg_bytes(target, result.data, outputs=self.outputs)
        else:
            save_image(target, result, alpha=alpha, quality=self.quality, outputs=self.outputs)
        if self.quiet:
            return None
        return f"{path} -> {target}" + (f" ({tiles} tiles)" if tiles else "")


def stylize_files(inputs: Union[str, Path, Sequence[Union[str, Path]]], style: str = "mona",
                  output: Optional[Union[str, Path]] = None, *, size: Optional[int] = None, enlarge: bool = False,
                  strength: float = 1.0, preserve_color: bool = False, tile="auto", ext: Optional[str] = None,
                  overwrite: bool = False, device: str = "auto", precision: str = "auto", tune: Optional[bool] = None,
                  max_pixels: Optional[int] = -1, on_note: Optional[Callable[[str], None]] = None,
                  progress: Optional[Callable[[int, int], None]] = None):
    """Stylize photos and videos (files, folders, glob patterns) with a bundled or trained style
    (a name, a record .json or a .safetensors), a painting's image file, or a blend (a list of
    ``"painting.jpg:0.7"`` / ``("mona", 0.3)`` entries: the any-painting network, strength in style
    space, as ``cvtools stylize -s a.jpg:0.7 -s mona:0.3``) and write each result as ``cvtools stylize`` does:
    ``STEM_STYLE.EXT`` next to its input, or in ``output`` (a directory: an existing one, a path
    ending in "/", or any path for several inputs; else the file itself), tagged with the provenance marker, atomically; a re-run skips the finished ones
    (``overwrite=True`` redoes them). Options as the command's (``size``: longest side, shrinking
    only unless ``enlarge``; ``ext``: ".jpg", ".png" or ".webp", default the input's).
    ``on_note(message)``: notes (renamed and skipped outputs, per-file errors);
    ``progress(done, total)``: after each input. Returns the :class:`cvtools.batch.BatchReport`
    (``done``, ``failed``, ``skipped``); a file that fails does not stop the others."""
    from cvtools.batch import run
    from cvtools.deferred import Deferred
    from cvtools.io.decode import checked_size
    from cvtools.io.discover import find_inputs
    from cvtools.io.naming import Outputs
    from cvtools.video.jobs import media_extensions, stylize_maker, with_videos

    size = checked_size(size, 16, 32768)  # the command's --size range
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    # an unknown style, a bad weight or an unreadable painting answers now, before any file is read
    record, paintings, name, given = _styles_of(style, max_pixels)

    found = find_inputs([str(i) for i in inputs], extensions=media_extensions())

    def build():  # the network the command would run: the shipped ONNX graph on a CPU, else torch
        if paintings is not None:
            from cvtools.style.painting import NetworkPaintingStylizer

            return NetworkPaintingStylizer(paintings, device=device, precision=precision, on_note=on_note, name=name)
        from cvtools.style.fast_cpu import torch_free_stylizer

        fast = torch_free_stylizer(record, device=device, precision=precision, compile=False, engine="pytorch",
                                   inputs=found.paths)
        if fast is not None:
            return fast
        from cvtools.style.stylize import Stylizer

        return Stylizer(record, device=device, precision=precision, tune=tune, on_note=on_note)

    stylizer = Deferred(build)  # built at the first input that needs it (none if all are done)
    outputs = Outputs(stylize_provenance(given, size=size, enlarge=enlarge, strength=strength,
                                         preserve_color=preserve_color, ext=ext))
    output = None if output is None else str(output)
    photos = stylize_work(stylizer, output=output, size=size, strength=strength, preserve_color=preserve_color,
                          tile=tile, ext=ext, many=found.many, overwrite=overwrite, inputs=found.paths, quiet=True,
                          enlarge=enlarge, name=name, outputs=outputs, max_pixels=max_pixels, device=device)
    work = with_videos(photos, stylize_maker(stylizer, size=size, enlarge=enlarge, strength=strength,
                                           preserve_color=preserve_color, tile=tile, tune=tune),
                       name, output=output, overwrite=overwrite, many=found.many, inputs=found.paths,
                       quiet=True, outputs=outputs, max_pixels=max_pixels)

    def failed(path, message, exc):
        if on_note is not None:
            on_note(message)

    try:
        return run(found, work, outputs=outputs, on_note=on_note, on_fail=failed, progress=progress)
    finally:
        photos.close()  # its decoding processes, if any, end with the call


def _styles_of(style, max_pixels=-1):
    """(record, None, name, given) for one trained style; (None, [(source, weight)], name, given)
    for a painting file or a blend, its paintings read and checked now. ``given``: the --style
    values as the command records them."""
    from cvtools.errors import UsageError, safe_path
    from cvtools.style.records import bundled_names, is_painting, load_painting, parse_style_spec, resolve_style

    entries = [style] if isinstance(style, (str, Path)) or not isinstance(style, (list, tuple)) else list(style)
    specs = [(str(e[0]), float(e[1])) if isinstance(e, tuple) else parse_style_spec(e) for e in entries]
    given = [e if not isinstance(e, tuple) else f"{e[0]}:{e[1]:g}" for e in entries]
    if not specs:
        raise UsageError("style is empty: give a style, a painting or a blend", param="style")
    if len(specs) == 1 and not is_painting(specs[0][0]):
        if specs[0][1] != 1.0:
            raise UsageError(f"{safe_path(specs[0][0])}: a weight is only for blending styles", param="style")
        record = resolve_style(entries[0] if isinstance(entries[0], (str, Path)) else specs[0][0])
        return record, None, record.name, str(entries[0]) if isinstance(entries[0], (str, Path)) else record.name
    if len(specs) == 1 and specs[0][1] != 1.0:
        raise UsageError(f"{safe_path(specs[0][0])}: a weight is only for blending styles", param="style")
    sources = []
    for path, weight in specs:
        if is_painting(path):
            sources.append((load_painting(path, max_pixels=max_pixels), weight))
        elif resolve_style(path).name in bundled_names() and not Path(path).suffix:
            if Path(path).is_file():  # the network would read the file; a bare name is the bundled style
                from cvtools.style.arbitrary import bundled_style_embedding

                sources.append((bundled_style_embedding(resolve_style(path).name), weight))
                continue
            sources.append((path, weight))
        else:
            raise UsageError(f"{safe_path(path)}: a style from train-style cannot be blended (only paintings and "
                             "bundled styles can)", param="style")
    from cvtools.style.painting import style_stem  # torch: only where the any-painting network runs

    name = "+".join(dict.fromkeys(style_stem(p) for p, _ in specs))
    return None, sources, name, [str(g) for g in given]


def stylize_provenance(style, size=None, enlarge=False, strength=1.0, preserve_color=False, ext=None):
    """What the outputs of :func:`stylize_files` record: the provenance ``cvtools stylize -s STYLE``
    records for the same settings (the command line's options, as click parses them), so that a
    folder done by either is done for the other (a re-run skips it)."""
    from cvtools.io.decode import checked_size
    from cvtools.io.markers import Provenance

    styles = [str(v) for v in style] if isinstance(style, (list, tuple)) else [str(style)]
    options = {"--style": styles, "--size": checked_size(size, 16, 32768), "--strength": float(strength),
               "--preserve-color": bool(preserve_color), "--format": "same" if ext is None else ext.lstrip(".").lower(),
               "--engine": "pytorch", "--seed": None, "--steps": None, "--style-scale": 1.0}
    if enlarge:
        options["--enlarge"] = True  # an option added later: recorded only when given
    return Provenance("stylize", options)
