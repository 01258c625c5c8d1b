"""Stylize and dream whole videos: decode → compute → encode, overlapped.

>>> from cvtools.style import Stylizer
>>> from cvtools.video.process import stylize_video
>>> stylize_video(Stylizer("starry_night"), "clip.mp4", "clip_starry_night.mp4")

The decoder runs in a thread ahead of the device (:func:`cvtools.batch.prefetch`), frames of one
size go through the style network in batches on the calling thread, and one writer thread
encodes them in order (:func:`cvtools.batch.run_stages` with one save thread), so the GPU does
not wait for FFmpeg. The output is written atomically (a hidden temporary file in the target
folder, renamed at the end; removed on any error or Ctrl-C), keeps the frame timestamps and the
audio of the range read.

``stable``: a :class:`cvtools.video.stability.Stabilizer` (:class:`~cvtools.video.stability.TemporalStabilizer`;
``.reset()`` once per clip). One that ``wraps_effect`` (the phase lock, which does most of the
work): each decoded frame goes through ``prepare`` in frame order in the decoder's thread (the
network then runs on the shifted, padded frame) and each result through ``finish`` in order in
the writer thread. Others (blend only) have ``.step(frame_in, output) -> output`` applied to each
result in the writer thread. ``dream_video`` starts each frame's dream from the previous dream warped by
the optical flow of the input (DeepDreamVideo's method), so the creatures move with the scene.

Library code: nothing is printed; ``progress(done, total)`` and ``on_note(message)`` report.
"""

from __future__ import annotations

import os
import time
from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable, Optional

from cvtools.device import cudnn_benchmark
from cvtools.errors import CvtoolsError
from cvtools.video.io import (
    MAX_FRAMES,
    AudioSource,
    VideoInfo,
    animation_drops_note,
    check_output_format,
    check_range,
    hdr_note,
    open_writer,
    output_size,
    probe_video,
    read_frames,
    yuv_matrix,
)


@dataclass
class VideoResult:
    """What one video run did: frames written, size, and seconds spent per phase (decode and
    encode run in their own threads, so the phases overlap and add up to more than ``seconds``)."""

    path: Path
    frames: int
    width: int
    height: int
    fps: Fraction
    seconds: float = 0.0
    phases: dict = field(default_factory=dict)
    audio: Optional[str] = None

    @property
    def rate(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


class _Clock:
    """Seconds spent in each phase (thread-safe enough: each phase is one thread)."""

    def __init__(self):
        self.t = {}

    def add(self, name, seconds):
        self.t[name] = self.t.get(name, 0.0) + seconds


def _timed(iterator, clock: _Clock, name: str):
    it = iter(iterator)
    while True:
        t0 = time.perf_counter()
        try:
            x = next(it)
        except StopIteration:
            clock.add(name, time.perf_counter() - t0)
            return
        clock.add(name, time.perf_counter() - t0)
        yield x


def _batches(frames, size: int):
    batch = []
    for f in frames:
        batch.append(f)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def expected_frames(info: VideoInfo, start: float = 0.0, duration: Optional[float] = None) -> Optional[int]:
    """About how many frames a range holds (for the progress bar's total): from 1 to
    :data:`MAX_FRAMES` whatever the range (a start past the end, a duration of 1e308 s)."""
    if info.frames is None and info.duration is None:
        return None
    fps = float(info.fps)
    n = (info.frames if info.frames is not None else info.duration * fps) - start * fps
    if duration is not None:
        n = min(n, duration * fps)
    if not n >= 1:  # NaN too
        return 1
    return round(min(n, MAX_FRAMES))  # bounded before rounding: round(inf) is an OverflowError


def _probed(src: Path, info: Optional[VideoInfo], start, duration) -> VideoInfo:
    """``info`` (``src`` probed when None), the range checked against it: before any work or
    output, a range that is not one of the clip is a one-line error naming the parameter."""
    info = info or probe_video(src)
    check_range(info, start, duration)
    return info


def marker_comment(dst, outputs=None) -> Optional[str]:
    """The provenance marker text an output named by ``outputs`` (the run's
    :class:`~cvtools.io.naming.Outputs`) carries ("cvtools:{...}"), or None outside a run."""
    from cvtools.io.markers import output_metadata

    comment = output_metadata(dst, "GIF", outputs).get("comment")
    return comment.decode("ascii", "replace") if comment else None


def _run_video(src, dst, compute_batch, *, start, duration, size, batch_size, stable, progress, on_note, info,
               overwrite, encoder_options, planes=False, planes_out=False, finished=False, outputs=None):
    """Shared pipeline: probe, decode (thread), compute (this thread), stabilize + encode (one
    writer thread), atomic write. ``compute_batch(list of H×W×3 uint8) -> list of H×W×3 uint8``
    (``planes``: lists of yuv420p planes in and out, see :func:`planes_to_rgb`; ``planes_out``: RGB
    in, yuv420p planes or RGB out, each frame written as what it is; ``finished``:
    ``compute_batch`` already applies ``stable.finish`` to its results)."""
    # Over one screen: the clip's settings, then the writer closure atomic_write runs; the stages are
    # functions of their own.
    from cvtools.batch import prefetch
    from cvtools.io.atomic import atomic_write

    src, dst = Path(src), Path(dst)
    check_output_format(dst)
    on_note = on_note or (lambda msg: None)
    info = info or probe_video(src)
    video_out = dst.suffix.lower() not in (".gif", ".webp")
    (w, h), crop_note = output_size(info, size, even=video_out)
    if crop_note:
        on_note(f"{src.name}: {crop_note}")
    hdr = hdr_note(info)
    if hdr:
        on_note(f"{src.name}: {hdr}")
    dropped = animation_drops_note(src, dst, info.has_audio, info.subtitles)
    if dropped:
        on_note(dropped)
    total = expected_frames(info, start, duration)
    clock = _Clock()
    done = 0
    comment = marker_comment(dst, outputs)
    audio = AudioSource(src, start, duration) if ((info.has_audio or info.subtitles) and video_out) else None
    result = VideoResult(dst, 0, w, h, info.fps)
    t_start = time.perf_counter()

    def write(tmp):
        nonlocal done
        writer = open_writer(dst, tmp, w, h, info.fps, audio=audio, comment=comment, on_note=on_note,
                             expected_frames=total, **(encoder_options if video_out else {}))
        frames = read_frames(src, start=start, duration=duration, size=size, even=video_out, info=info, planes=planes)
        put = writer.write_planes if planes else writer.write
        if planes_out:  # planes (2-D) where the device made them, RGB (H×W×3) from the frame-by-frame path
            def put(frame, t, alpha=None):
                return writer.write_planes(frame, t) if frame.ndim == 2 else writer.write(frame, t, alpha=alpha)
        if stable is not None:
            stable.reset()  # before the decoder's thread starts preparing frames
        phase_lock = stable is not None and stable.wraps_effect
        frames = _timed(frames, clock, "decode")
        if phase_lock:
            frames = _prepared(frames, stable, clock)
        decoded = prefetch(frames, ahead=2 * batch_size + 2)
        compute, save = _frame_stages(compute_batch, stable, phase_lock, finished, put, clock)

        def counted(n):
            nonlocal done
            done += n
            if progress:
                progress(done, max(total or 0, done))

        def begin():
            if progress:
                progress(0, total)

        _encode(decoded, writer, compute, save, batch_size, begin, counted, clock)
        tracks = [getattr(writer, "notify_audio", None), getattr(writer, "notify_subtitles", None)]
        result.audio = ", ".join(t for t in tracks if t) or None

    try:
        atomic_write(dst, write, overwrite=overwrite, outputs=outputs)
    except _Passthrough as p:
        raise p.exc from None
    result.frames = done
    result.seconds = time.perf_counter() - t_start
    result.phases = dict(clock.t)
    return result


def _frame_stages(compute_batch, stable, phase_lock, finished, put, clock):
    """(compute, save) of a video's batches of frames for :func:`cvtools.batch.run_stages`: the
    effect on this thread; the stabilizer's ``step`` or ``finish`` (unless ``finished``: the
    effect did it) and ``put`` into the encoder on the writer thread; each phase timed."""
    import numpy as np

    def compute(batch, _):
        t0 = time.perf_counter()
        out = compute_batch([f.rgb for f in batch])
        clock.add("compute", time.perf_counter() - t0)
        return batch, out

    def save(batch, pending):
        frames_in, outs = pending
        t0 = time.perf_counter()
        for f, out in zip(frames_in, outs):
            if stable is not None:
                t1 = time.perf_counter()
                if not phase_lock:
                    out = stable.step(f.rgb, out)
                elif not finished:
                    out = stable.finish(out)
                clock.add("stable", time.perf_counter() - t1)
            if getattr(f, "alpha", None) is None:
                put(np.ascontiguousarray(out), f.time)
            else:  # an animation's transparent areas: kept where the output has an alpha channel
                put(np.ascontiguousarray(out), f.time, alpha=f.alpha)
        clock.add("encode", time.perf_counter() - t0)
        return len(frames_in)

    return compute, save


def _encode(decoded, writer, compute, save, batch_size, begin, counted, clock):
    """``begin()``, then the decoded frames through ``compute`` and ``save`` (one writer thread,
    in order), ``counted(n)`` after each batch, and the container closed. On any error or
    interrupt (a progress callback's too) the writer thread and the decoder stop before the
    container is aborted under them."""
    from cvtools.batch import run_stages

    stages = None
    try:
        begin()
        stages = run_stages(_batches(decoded, batch_size), None, compute, save, threads=1, save_threads=1)
        for outcome in stages:
            if outcome.error is not None:
                raise outcome.error
            counted(outcome.value)
        t0 = time.perf_counter()
        writer.close()
        clock.add("encode", time.perf_counter() - t0)
    except BaseException as exc:
        if stages is not None:
            stages.close()
        decoded.close()
        writer.abort()
        if isinstance(exc, Exception) and not isinstance(exc, CvtoolsError):
            raise _Passthrough(exc) from exc  # atomic_write would call it "cannot write"
        raise


def flow_workers() -> int:
    """Threads for the stabilizer's optical flow: a quarter of the cores, at most 4 (the encoder
    and the decoder want the rest); 1 (in the decoder's thread) on machines of up to 7 cores."""
    return max(1, min(4, (os.cpu_count() or 1) // 4))


def _prepared(frames, stable, clock: _Clock, workers: Optional[int] = None):
    """The decoded frames with ``rgb`` replaced by ``stable.prepare(rgb)`` (the stabilizer's phase
    lock: each frame shifted onto the style network's grid and padded), in frame order. It runs
    in the decoder's thread, so its optical flow (CPU) overlaps the network; ``finish`` in the
    writer thread crops each result back and blends it (they share only the stabilizer's queue).

    The flow between two frames depends on those two frames alone, so with ``workers`` > 1 it is
    computed by that many threads a few frames ahead (``stable.measure``, one estimator per
    thread) and only the cheap rest of ``prepare`` (the motion sum, the shift) stays in order:
    the same frames come out. On a 16-core GPU host one thread of flow was what held ``--stable``
    to ~21 frames/s at 1080p (BENCHMARKS.md, "Video")."""
    workers = flow_workers() if workers is None else workers
    if workers <= 1 or not stable.measures_ahead:
        for f in frames:
            t0 = time.perf_counter()
            f.rgb = stable.prepare(f.rgb)
            clock.add("prepare", time.perf_counter() - t0)  # its own key: the writer thread adds "stable"
            yield f
        return
    import threading
    from concurrent.futures import ThreadPoolExecutor

    local = threading.local()

    def measure(cur, prev):
        est = getattr(local, "estimator", None)
        if est is None:
            est = local.estimator = stable.estimator.copy()
        return stable.measure(cur, prev, estimator=est)

    pending = deque()  # (frame, its measurement under way), in frame order
    prev = None
    with ThreadPoolExecutor(workers, thread_name_prefix="cvtools-flow") as pool:
        try:
            for f in frames:
                pending.append((f, pool.submit(measure, f.rgb, prev)))
                prev = f.rgb  # the decoded frame itself (prepare replaces f.rgb, not its pixels)
                while len(pending) > workers:
                    yield _prepare_one(stable, clock, *pending.popleft())
            while pending:
                yield _prepare_one(stable, clock, *pending.popleft())
        finally:
            for _, fut in pending:
                fut.cancel()


def _prepare_one(stable, clock: _Clock, f, measured):
    t0 = time.perf_counter()
    f.rgb = stable.prepare(f.rgb, measured=measured.result())
    clock.add("prepare", time.perf_counter() - t0)
    return f


class _Passthrough(CvtoolsError):
    """Carries a computation's own exception (out of memory, a NaN result) through atomic_write,
    which removes the temporary file and would otherwise report any other exception as a write
    failure."""

    def __init__(self, exc):
        super().__init__(str(exc))
        self.exc = exc


def _default_batch(stylizer, h: int, w: int) -> int:
    """Frames per forward pass: several on a GPU (fills it at small sizes, fewer launches), one on
    a CPU (no gain there); bounded by the activation memory budget."""
    device = getattr(stylizer, "device", None)
    if device is None or getattr(device, "type", "cpu") != "cuda":
        return 1
    from cvtools.style.stylize import images_per_pass

    try:
        return images_per_pass(stylizer.bytes_per_pixel(), stylizer.activation_budget(), h, w, 8)
    except Exception:
        return 1


#: Luma weights (Kr, Kb) of the colour matrices.
_KR_KB = {"bt709": (0.2126, 0.0722), "bt601": (0.299, 0.114)}


def planes_to_rgb(planes, h: int, w: int, matrix: str = "bt709", full_range: bool = False):
    """N×(H·3/2)×W uint8 yuv420p planes (Y, then U, then V) → N×3×H×W float RGB in [0, 1], on the
    planes' device: what FFmpeg's yuv→rgb24 conversion does (chroma upsampled bilinearly), done
    where the frames are going anyway (half the bytes of RGB to upload, no CPU conversion)."""
    import torch
    import torch.nn.functional as F

    n = planes.shape[0]
    y = planes[:, :h].float()
    uv = planes[:, h:].reshape(n, 2, h // 2, w // 2).float()
    if full_range:
        y, uv = y / 255.0, (uv - 128.0) / 255.0
    else:
        y, uv = (y - 16.0) / 219.0, (uv - 128.0) / 224.0
    uv = F.interpolate(uv, size=(h, w), mode="bilinear", align_corners=False)
    kr, kb = _KR_KB[matrix]
    r = y + 2 * (1 - kr) * uv[:, 1]
    b = y + 2 * (1 - kb) * uv[:, 0]
    g = (y - kr * r - kb * b) / (1 - kr - kb)
    return torch.stack([r, g, b], 1).clamp_(0, 1)


def rgb_to_planes(rgb, matrix: str = "bt709"):
    """N×3×H×W float RGB in [0, 1] → N×(H·3/2)×W uint8 yuv420p planes, limited range (16-235 luma,
    16-240 chroma), chroma averaged over 2×2 pixels: what the encoder takes, made on the device."""
    import torch
    import torch.nn.functional as F

    n, _, h, w = rgb.shape
    kr, kb = _KR_KB[matrix]
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    y = kr * r + (1 - kr - kb) * g + kb * b
    chroma = torch.stack([(b - y) / (2 * (1 - kb)), (r - y) / (2 * (1 - kr))], 1)
    chroma = F.avg_pool2d(chroma, 2)
    luma = (16.0 + 219.0 * y).round_().clamp_(0, 255).to(torch.uint8)
    chroma = (128.0 + 224.0 * chroma).round_().clamp_(0, 255).to(torch.uint8)
    return torch.cat([luma.reshape(n, -1), chroma.reshape(n, -1)], 1).reshape(n, h * 3 // 2, w)


def _goes_whole(stylizer, h: int, w: int, strength: float, tile) -> bool:
    """Whether an h×w frame goes whole through the stylizer's ``stylize_tensor`` (its own
    ``batchable`` where it has one: the any-painting network paints small frames larger)."""
    if hasattr(stylizer, "batchable"):
        return stylizer.batchable(h, w, strength, tile)
    from cvtools.style.stylize import MIN_SIDE

    return min(h, w) >= MIN_SIDE and 0 < strength and stylizer.tile_side(tile, h, w) is None


def stylize_frames_fn(stylizer, strength: float = 1.0, preserve_color: bool = False, tile="auto", yuv=None,
                      finish=None, planes_out: Optional[str] = None):
    """``compute_batch(list of H×W×3 uint8) -> list of H×W×3 uint8`` for a :class:`Stylizer`: the
    batch goes to the device as 8 bits (a quarter of float's bytes) and comes back as 8 bits.

    ``finish``: applied to each result, in order, before it leaves the device (a stabilizer's
    ``finish``: 1×3×H×W float tensors on the whole-frame path, so its warp and blend run there;
    H×W×3 uint8 arrays on the others).

    ``yuv=(matrix in, full range in, matrix out)``: frames come and go as yuv420p planes
    (:func:`planes_to_rgb`, :func:`rgb_to_planes` on the device; the whole-frame path only).
    ``planes_out=matrix``: RGB frames in, yuv420p planes out where the whole batch is on the device
    (made there after ``finish``: the stabilized path, whose flow needs the decoded RGB); frames
    that go one at a time (tiles, tiny frames, other stylizers) still come back as RGB."""
    # Over one screen: four closures that share the pinned staging buffer and the stylizer's settings.
    import numpy as np
    import torch

    from cvtools.io.decode import to_uint8
    from cvtools.style.stylize import finish_pixels

    fast = hasattr(stylizer, "stylize_tensor") and hasattr(stylizer, "device")
    staging = {}  # a pinned N×H×W×3 buffer, reused: one copy from the decoded frames, async upload

    def upload(frames):
        n, shape = len(frames), frames[0].shape
        if stylizer.device.type != "cuda":
            return torch.from_numpy(np.stack(frames))
        buf = staging.get("buf")
        if buf is None or buf.shape[0] < n or tuple(buf.shape[1:]) != tuple(shape):
            buf = staging["buf"] = torch.empty((n, *shape), dtype=torch.uint8).pin_memory()
        np.stack(frames, out=buf[:n].numpy())
        # safe to reuse next call: the .cpu() at the end of this batch waited for the upload
        return buf[:n].to(stylizer.device, non_blocking=True)

    def painted(original):
        """The batch's finished pictures: a stylizer that mixes strength in style space (the
        any-painting network) takes it itself, the others' is a pixel mix."""
        if getattr(stylizer, "strength_in_style", False):
            return finish_pixels(stylizer.stylize_tensor(original, strength), original, 1.0, preserve_color)
        return finish_pixels(stylizer.stylize_tensor(original), original, strength, preserve_color)

    def compute_planes(frames):
        h, w = frames[0].shape[0] * 2 // 3, frames[0].shape[1]
        with torch.inference_mode():
            original = planes_to_rgb(upload(frames), h, w, yuv[0], yuv[1])
            result = painted(original)
            if not bool(torch.isfinite(result).all()):
                raise CvtoolsError("the network's output has NaN or infinite values (a numerical failure); try "
                                   "precision='fp32'", param="precision")
            return list(rgb_to_planes(result, yuv[2]).cpu().numpy())

    if yuv is not None:
        return compute_planes

    def compute(frames):
        h, w = frames[0].shape[:2]
        whole = fast and _goes_whole(stylizer, h, w, strength, tile)
        if not whole:  # tiles, tiny frames, other stylizers: one frame at a time through __call__
            outs = []
            for rgb in frames:
                x = torch.from_numpy(rgb).permute(2, 0, 1)
                y = stylizer(x.float().div(255.0), strength=strength, preserve_color=preserve_color, tile=tile,
                             as_uint8=True)
                y = y if y.dtype == torch.uint8 else to_uint8(y)
                y = y.permute(1, 2, 0).contiguous().numpy()
                outs.append(y if finish is None else finish(y))
            return outs  # RGB even with planes_out: converted by FFmpeg on the writer's thread, not here
        with torch.inference_mode():
            pixels = upload(frames)  # N×H×W×3 uint8 on the device
            original = pixels.permute(0, 3, 1, 2).float().div_(255.0)  # channels-last NCHW view
            result = painted(original)
            if not bool(torch.isfinite(result).all()):
                raise CvtoolsError("the network's output has NaN or infinite values (a numerical failure); try "
                                   "precision='fp32'", param="precision")
            if finish is not None:
                result = torch.cat([finish(result[i:i + 1]) for i in range(result.shape[0])])
            if planes_out:  # half the bytes back, and no RGB → YUV conversion on the writer's thread
                return list(rgb_to_planes(result, planes_out).cpu().numpy())
            u8 = to_uint8(result).permute(0, 2, 3, 1).contiguous().cpu().numpy()
        return list(u8)

    return compute


def stylize_video(stylizer, src, dst, *, start: float = 0.0, duration: Optional[float] = None,
                  size: Optional[int] = None, strength: float = 1.0, preserve_color: bool = False, tile="auto",
                  stable=None, batch_size: Optional[int] = None, progress: Optional[Callable[[int, int], None]] = None,
                  on_note: Optional[Callable[[str], None]] = None, info: Optional[VideoInfo] = None,
                  overwrite: Optional[bool] = None, crf: Optional[int] = None,
                  preset: Optional[str] = None, tune: Optional[bool] = None,
                  yuv: Optional[bool] = None, finish_on_device: Optional[bool] = None, planes_out: Optional[bool] = None,
                  outputs=None) -> VideoResult:
    """Stylize the frames of ``src`` (from ``start`` seconds, for ``duration``; resized to a longer
    side of ``size``) and write ``dst`` (container by extension) with the audio of that range.

    ``stable``: a temporal stabilizer (see the module). ``batch_size``: frames per forward pass
    (default: up to 8 on a GPU, as memory allows; 1 on a CPU). ``progress(done, total)`` after each
    batch is encoded. ``overwrite``: None follows the decision ``outputs`` (the run's
    :class:`~cvtools.io.naming.Outputs`, which also gives the marker) made when naming ``dst``.
    ``crf``/``preset``: H.264 quality and speed (defaults 18 and :func:`x264_preset_for`: ``superfast``
    on CUDA, ``veryfast`` elsewhere; ``CVTOOLS_X264_PRESET`` overrides the default;
    ``CVTOOLS_ENCODE_CHUNKS=K`` encodes H.264 with K encoders at once, in 2-second chunks; unset,
    0 or 1: one serial encoder). ``tune``: cuDNN
    autotuning on CUDA for this run, the earlier setting put back after it (None: for clips of
    :data:`TUNE_FRAMES` frames or more; it costs a second or two once). Returns a :class:`VideoResult` with the
    frame count and per-phase seconds. ``yuv``: move frames to and from the device as yuv420p
    planes, converted there (None: on CUDA whenever the source is 8-bit yuv420p BT.601/709 and the
    frames need no resizing, turning, cropping or stabilizing; the rest takes RGB from FFmpeg).
    ``finish_on_device``: a phase-locking stabilizer's ``finish`` (crop, warp, blend) runs on the
    network's results where they are, in the compute stage (None: on CUDA, where it is nearly free;
    on a CPU it runs in the writer thread, beside the encoder, overlapping the network).
    ``planes_out``: with ``finish_on_device``, the stabilized results leave the device as yuv420p
    planes for the encoder (None: whenever the output is a video file; the frames still arrive as
    RGB, which the flow needs). On an H200 the RGB frames' conversion on the writer's thread took
    ~8 ms a 1080p frame (``from_ndarray`` and FFmpeg's RGB → YUV), the planes' 1.3 ms (profiled
    2026-12-05)."""
    src = Path(src)
    info = _probed(src, info, start, duration)
    video_out = Path(dst).suffix.lower() not in (".gif", ".webp")
    (w, h), _ = output_size(info, size, even=video_out)
    batch = batch_size or _default_batch(stylizer, h, w)
    source = yuv_matrix(info)
    can_yuv = (source is not None and video_out and not size and info.rotation == 0 and stable is None
               and hasattr(stylizer, "stylize_tensor") and _goes_whole(stylizer, h, w, strength, tile))
    if yuv is None:
        yuv = can_yuv and getattr(getattr(stylizer, "device", None), "type", None) == "cuda"
    elif yuv and not can_yuv:
        raise ValueError("yuv=True needs an 8-bit yuv420p BT.601/709 source, whole frames at their own size, no rotation "
                         "and no stabilizer")
    out_matrix = "bt709" if h >= 720 else "bt601"  # what VideoWriter tags
    preset = preset or x264_preset_for(stylizer)
    lock = stable is not None and stable.wraps_effect
    if finish_on_device is None:
        finish_on_device = getattr(getattr(stylizer, "device", None), "type", None) == "cuda"
    finish_on_device = bool(finish_on_device and lock)
    if planes_out is None:
        planes_out = finish_on_device and video_out and not yuv
    elif planes_out and not (finish_on_device and video_out and not yuv):
        raise ValueError("planes_out=True needs finish_on_device (a phase-locking stabilizer) and a video file out")
    compute = stylize_frames_fn(stylizer, strength, preserve_color, tile,
                                yuv=(source[0], source[1], out_matrix) if yuv else None,
                                finish=stable.finish if finish_on_device else None,
                                planes_out=out_matrix if planes_out else None)
    if tune is None:
        tune = (expected_frames(info, start, duration) or 0) >= TUNE_FRAMES
    with cudnn_benchmark(tune, getattr(stylizer, "device", None) or "cpu"):  # this run only
        return _run_video(src, dst, compute, start=start, duration=duration, size=size, batch_size=batch,
                          stable=stable, progress=progress, on_note=on_note, info=info, overwrite=overwrite,
                          encoder_options={"crf": crf, "preset": preset}, planes=bool(yuv),
                          planes_out=bool(planes_out), finished=finish_on_device, outputs=outputs)


#: libx264 preset when the style network runs on CUDA. Measured on an H100 host (16 cores, torch 2.11,
#: av 18.1, 1080p, 240 frames, starry_night, 2026-11-25): the encoder alone does 36.6 frames/s at
#: veryfast and 51.9 at superfast, the network alone 70.6, so end to end 47.0 vs 72.4 frames/s
#: (encode-bound). CRF 18 fixes the quality either way; superfast spends more bits for it.
GPU_X264_PRESET = "superfast"


def x264_preset_for(stylizer) -> Optional[str]:
    """The default libx264 preset for a stylizer's device: :data:`GPU_X264_PRESET` on CUDA (the
    encoder would otherwise hold the GPU back), None elsewhere (the writer's ``veryfast``: on a
    CPU the network is the bottleneck, so the slower, more compact preset costs nothing). The
    environment variable ``CVTOOLS_X264_PRESET`` wins over both."""
    import os

    if os.environ.get("CVTOOLS_X264_PRESET"):
        return None  # the writer reads it
    device = getattr(stylizer, "device", None)
    return GPU_X264_PRESET if getattr(device, "type", None) == "cuda" else None


#: Clips at least this long are stylized with cuDNN autotuning (on CUDA): every frame has one size,
#: so the second or two it costs once is repaid (about 30% faster frames after).
TUNE_FRAMES = 300


def dream_frames_fn(engine, seed: int = 0, warp: bool = True, blend: Optional[float] = None,
                    step_progress=None):
    """``compute_batch`` for dreams, one frame at a time: frame k starts from the previous dream
    flow-warped onto frame k (``cvtools.video.stability.dream_start``), or from the frame itself
    when ``warp`` is False. The same seed for every frame: the jitter pattern does not flicker."""
    import numpy as np
    import torch

    from cvtools.io.decode import to_uint8

    state = {"prev_in": None, "prev_out": None}
    start_fn = None
    if warp:
        from cvtools.video import stability

        start_fn = stability.dream_start

    def compute(frames):
        outs = []
        for rgb in frames:
            x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div_(255.0)
            if start_fn is not None and state["prev_out"] is not None:
                kwargs = {} if blend is None else {"blend": blend}
                x0 = start_fn(state["prev_in"], x, state["prev_out"], **kwargs)
                x0 = x0[0] if x0.dim() == 4 else x0
            else:
                x0 = x
            y = engine(x0.float().clamp(0, 1), seed=seed, progress=step_progress)
            y = (y[0] if y.dim() == 4 else y).detach().float().cpu()
            if not bool(torch.isfinite(y).all()):
                raise RuntimeError("the dream has NaN or infinite values (a numerical failure)")
            state["prev_in"], state["prev_out"] = x, y
            outs.append(to_uint8(y).permute(1, 2, 0).contiguous().numpy())
        return outs

    return compute


def dream_video(engine, src, dst, *, start: float = 0.0, duration: Optional[float] = None,
                size: Optional[int] = None, seed: int = 0, warp: bool = True, blend: Optional[float] = None,
                stable=None, progress: Optional[Callable[[int, int], None]] = None, step_progress=None,
                on_note: Optional[Callable[[str], None]] = None, info: Optional[VideoInfo] = None,
                overwrite: Optional[bool] = None, crf: Optional[int] = None,
                preset: Optional[str] = None, outputs=None) -> VideoResult:
    """Dream every frame of ``src`` and write ``dst`` with the audio. ``warp`` (default): each frame
    starts from the previous dream warped by the input's optical flow and blended with the new
    frame (``blend``: V2's default), so patterns follow the motion instead of being re-dreamed
    from scratch each frame. ``step_progress``: an object with ``update(n)``, per dream step."""
    src = Path(src)
    info = _probed(src, info, start, duration)
    compute = dream_frames_fn(engine, seed=seed, warp=warp, blend=blend, step_progress=step_progress)
    return _run_video(src, dst, compute, start=start, duration=duration, size=size, batch_size=1,
                      stable=stable, progress=progress, on_note=on_note, info=info, overwrite=overwrite,
                      encoder_options={"crf": crf, "preset": preset}, outputs=outputs)
