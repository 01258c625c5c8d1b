"""Video input and output: decode frames from mp4/mov/mkv/webm/avi and animated GIF/WebP, encode
them back with the audio track, atomically.

Decoding and encoding use PyAV (FFmpeg inside its wheels; imported lazily, so commands that never
see a video never load it). Animated GIF and WebP go through Pillow (it reads both, with each
frame's duration, which every output keeps, the last frame's included; transparent areas are
laid on white).

>>> from cvtools.video.io import probe_video, read_frames, write_video
>>> info = probe_video("clip.mp4")                 # validated: size, frame rate, length, audio
>>> frames = [f.rgb for f in read_frames("clip.mp4", start=2.0, duration=1.5)]   # H×W×3 uint8
>>> write_video("out.mp4", frames, fps=info.fps, audio_from=("clip.mp4", 2.0, 1.5))

Untrusted files: the container is recognised from its first bytes and opened with that demuxer
only (never FFmpeg's guess, which would follow an HLS playlist or a concat list named .mp4 to
other files), the size is checked against the pixel limit (``CVTOOLS_MAX_PIXELS``) and the
aspect-ratio limit before any frame is decoded, the length against :data:`MAX_FRAMES`, and the
first frame is decoded before any output is made. Every failure is an
:class:`~cvtools.errors.ImageError` naming the file, on one line.

Output (:class:`VideoWriter`): H.264 (yuv420p, CRF 18) in mp4/mov/mkv, VP9 in webm, or an
animated GIF/WebP through Pillow; H.264 in parallel chunks when asked
(``CVTOOLS_ENCODE_CHUNKS=K`` encoders; 0, 1 or unset: one serial encoder, the default until a big
host has measured the gain: :mod:`cvtools.video.chunked`); the frame rate and timestamps of the input are kept; the audio
is copied packet for packet when the container takes its codec, else re-encoded (AAC, or Opus
for webm). yuv420p needs even sides: an odd width or height is cropped by one pixel (and the
caller is told).
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Tuple, Union

from cvtools.errors import CvtoolsError, ImageError, UsageError, one_line
from cvtools.io.container import av_module, check_file, open_input, sniff_container
from cvtools.io.decode import MAX_ASPECT_RATIO, max_pixels_from_env, sniff_image
from cvtools.io.discover import VIDEO_EXTENSIONS  # one list: discovery finds videos in folders

#: Written through FFmpeg; .gif/.webp through Pillow.
WRITABLE_VIDEO = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm"}
#: Image formats that may hold an animation (read through Pillow).
ANIMATION_EXTENSIONS = {".gif", ".webp"}
#: Default output container for an input of each kind (GIF/WebP/AVI/WebM become mp4: full colour,
#: H.264 encodes fast and plays everywhere).
DEFAULT_OUTPUT_EXT = {".mp4": ".mp4", ".m4v": ".mp4", ".mov": ".mov", ".mkv": ".mkv"}
#: Longest clip accepted (frames): 10 hours at 60 fps.
MAX_FRAMES = 2_160_000
#: Frame rates accepted (frames per second).
MIN_FPS, MAX_FPS = Fraction(1, 100), Fraction(1000)
#: GIF/WebP outputs are assembled in memory: refused over this many bytes of frames.
MAX_ANIMATION_BYTES = 2 * 1024 ** 3

_AV_LOCK = threading.Lock()


def _av_errors():
    av = av_module()
    return (av.error.FFmpegError, av.error.InvalidDataError) if hasattr(av, "error") else (Exception,)


@dataclass
class VideoInfo:
    """What :func:`probe_video` found (validated)."""

    path: Path
    width: int
    height: int
    fps: Fraction
    #: frame count: exact for GIF/WebP, the container's count or duration × fps for videos (None: unknown)
    frames: Optional[int]
    duration: Optional[float]
    has_audio: bool
    codec: str
    kind: str  # "video" (FFmpeg) or "animation" (GIF/WebP through Pillow)
    audio_codec: Optional[str] = None
    #: clockwise rotation (0, 90, 180, 270) the player applies (phone videos): frames are returned upright
    rotation: int = 0
    #: per-frame durations in seconds (animations only)
    durations: Optional[Tuple[float, ...]] = None
    #: the first frame's pixel format, colour matrix and range (FFmpeg's enums; videos only)
    pix_fmt: Optional[str] = None
    colorspace: int = 2
    color_range: int = 0
    #: the transfer characteristic (FFmpeg's enum: 16 PQ / SMPTE 2084, 18 HLG; 2 unspecified)
    color_trc: int = 2
    #: the codecs of its subtitle tracks (copied into video outputs that can hold them)
    subtitles: Tuple[str, ...] = ()

    @property
    def display_size(self) -> Tuple[int, int]:
        """(width, height) of the frames as returned (after rotation)."""
        return (self.height, self.width) if self.rotation in (90, 270) else (self.width, self.height)


class FrameTime(float):
    """A frame's time in seconds (a float like any other) that also says when the frame leaves
    the screen: ``end``, on the same clock. An animation's frames each have a duration of their
    own, the last one's included, which no frame after it tells; the writers (:class:`VideoWriter`,
    :class:`AnimationWriter`) given this time as it is keep that duration."""

    end: Optional[float]

    def __new__(cls, time: float, end: Optional[float] = None):
        obj = super().__new__(cls, time)
        obj.end = end
        return obj


def _end_of(time, end: Optional[float]) -> Optional[float]:
    """When the frame shown at ``time`` leaves the screen: ``end`` if given, else what a
    :class:`FrameTime` says, else None (the writer's frame rate decides)."""
    return end if end is not None else getattr(time, "end", None)


@dataclass
class Frame:
    """One decoded frame: ``rgb`` H×W×3 uint8 (C-contiguous), ``time`` in seconds from the start of
    the range read (for GIF/WebP a :class:`FrameTime`, which also holds the frame's end), ``index``
    0, 1, 2 … (``read_frames(planes=True)``: ``rgb`` holds the frame's yuv420p planes instead, one
    (H·3/2)×W uint8 array: Y, then U and V); ``alpha``: an animation frame's H×W uint8 opacity
    where it has transparent areas (its ``rgb`` laid on white there), else None"""

    rgb: "object"
    time: float
    index: int
    alpha: "object" = None


# ----------------------------------------------------------------------------- recognising


def _animation_kind(head: bytes) -> Optional[str]:
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    return None


def is_video(path) -> bool:
    """True for a video file name (mp4, mov, mkv, webm, m4v, avi) and for a GIF or WebP holding
    more than one frame (a still GIF/WebP is an image). Reads only the header of GIF/WebP files;
    never raises."""
    p = Path(path)
    ext = p.suffix.lower()
    if ext in VIDEO_EXTENSIONS:
        return True
    if ext not in ANIMATION_EXTENSIONS:
        return False
    try:
        if not p.is_file():
            return False
        from PIL import Image

        with Image.open(p, formats=("GIF", "WEBP")) as im:
            return bool(getattr(im, "is_animated", False))
    except Exception:
        return False


def _limits(path, w: int, h: int, max_pixels) -> None:
    if w < 2 or h < 2:
        raise ImageError(path, f"video frames are {w}x{h}: too small")
    if max(w, h) > MAX_ASPECT_RATIO * min(w, h):
        raise ImageError(path, f"{w}x{h} is a degenerate shape (aspect ratio {max(w, h) / min(w, h):.0f}:1, over the "
                               f"{MAX_ASPECT_RATIO}:1 limit)")
    limit = max_pixels_from_env() if max_pixels == -1 else max_pixels
    if limit and w * h > limit:
        from cvtools.io.decode import _pixels

        raise ImageError(path, f"video frames are {w}x{h} ({_pixels(w * h)}), over the {_pixels(limit)} safety "
                               "limit; pass max_pixels=0 to allow it",
                         param="max_pixels")


def probe_video(path, max_pixels: Optional[int] = -1) -> VideoInfo:
    """Open and validate a video or an animated GIF/WebP: one video stream, sane size (the pixel and
    aspect limits of images), a usable frame rate, at most :data:`MAX_FRAMES` frames, and a first
    frame that decodes. Raises ImageError naming the file."""
    # Over one screen: one check after another on the container, each raising its own one-line error.
    path = Path(path)
    head = check_file(path)
    anim = _animation_kind(head)
    if anim is not None:
        return _probe_animation(path, anim, max_pixels)
    demuxer = sniff_container(head)
    if demuxer is None:
        kind = sniff_image(head)
        what = f"a {kind[0]} file, not a video" if kind else "not a recognised video file"
        raise ImageError(path, f"{what} (cvtools reads mp4, mov, mkv, webm, avi and animated GIF/WebP)")
    errors = _av_errors()
    try:
        with open_input(path, demuxer) as container:
            if not container.streams.video:
                raise ImageError(path, "has no video stream")
            stream = container.streams.video[0]
            cc = stream.codec_context
            w, h = int(cc.width or 0), int(cc.height or 0)
            _limits(path, w, h, max_pixels)
            fps = stream.average_rate or stream.guessed_rate or stream.base_rate
            fps = Fraction(fps) if fps else None
            if fps is None or not (MIN_FPS <= fps <= MAX_FPS):
                raise ImageError(path, f"no usable frame rate ({float(fps) if fps else 'none'} frames/s)")
            duration = None
            if stream.duration and stream.time_base:
                duration = float(stream.duration * stream.time_base)
            elif container.duration:
                duration = container.duration / 1_000_000
            frames = int(stream.frames) if stream.frames else (round(duration * fps) if duration else None)
            if (frames and frames > MAX_FRAMES) or (duration and duration * fps > MAX_FRAMES):
                raise ImageError(path, f"{frames or round(duration * fps):,} frames, over the {MAX_FRAMES:,} frame "
                                       "limit; cut it first (`start`/`duration` read only part of a clip)",
                                 param=("start", "duration"))
            audio = container.streams.audio[0] if container.streams.audio else None
            codec = cc.name or "unknown"
            # the first frame must decode (a damaged or unsupported stream fails here, before any output)
            first = None
            for first in container.decode(stream):
                break
            if first is None:
                raise ImageError(path, "holds no decodable video frames (truncated or damaged)")
            rotation = _rotation(first)
            if (first.width, first.height) != (w, h):
                _limits(path, first.width, first.height, max_pixels)
                w, h = first.width, first.height
            return VideoInfo(path, w, h, fps, frames, duration, audio is not None, codec, "video",
                             audio.codec_context.name if audio is not None else None, rotation,
                             pix_fmt=first.format.name, colorspace=int(first.colorspace or 2),
                             color_range=int(first.color_range or 0), color_trc=_transfer(first, cc),
                             subtitles=tuple(t.codec_context.name or "unknown" for t in container.streams.subtitles))
    except ImageError:
        raise
    except CvtoolsError:
        raise
    except MemoryError:
        raise ImageError(path, "too large to decode in the memory available") from None
    except errors as exc:
        raise ImageError(path, f"cannot read video ({_reason(exc)})") from None
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:
        raise ImageError(path, f"cannot read video ({_reason(exc)})") from None


def _reason(exc) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    text = str(text).replace("[Errno", "").strip()
    return one_line(text, 200)


def _rotation(frame) -> int:
    """Clockwise degrees a player turns this frame by (its display matrix), as 0/90/180/270."""
    try:
        r = frame.rotation  # counter-clockwise degrees (FFmpeg's av_display_rotation_get)
    except Exception:
        return 0
    if not r:
        return 0
    return int(round(-float(r) / 90.0)) % 4 * 90


def _probe_animation(path: Path, fmt: str, max_pixels) -> VideoInfo:
    from PIL import Image

    try:
        with Image.open(path, formats=(fmt,)) as im:
            w, h = im.size
            _limits(path, w, h, max_pixels)
            n = getattr(im, "n_frames", 1)
            if n > MAX_FRAMES:
                raise ImageError(path, f"{n:,} frames, over the {MAX_FRAMES:,} frame limit")
            durations = []
            for k in range(n):
                im.seek(k)
                if "duration" not in im.info:  # Pillow's WebP (13.0) fills it only when the frame is loaded
                    im.load()
                d = im.info.get("duration") or 100  # browsers show 0 ms frames at 100 ms
                durations.append(max(0.02, float(d) / 1000.0))  # and < 20 ms as 100 ms too; clamp
            im.seek(0)
            im.load()
    except ImageError:
        raise
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:
        raise ImageError(path, f"cannot read animation ({_reason(exc)})") from None
    if n < 2:
        raise ImageError(path, "a still image (one frame), not an animation")
    total = sum(durations)
    median = sorted(durations)[len(durations) // 2]
    fps = Fraction(1.0 / median).limit_denominator(1001)
    return VideoInfo(path, w, h, fps, n, total, False, fmt.lower(), "animation", durations=tuple(durations))


# ----------------------------------------------------------------------------- reading


def output_size(info: VideoInfo, size: Optional[int] = None, even: bool = True) -> Tuple[Tuple[int, int], Optional[str]]:
    """((width, height) of the frames as read, a note or None): upright, resized so the longer side
    is ``size`` if given, and with even sides when ``even`` (yuv420p) — an odd side of the source is
    cropped by one pixel (the note says so)."""
    w, h = info.display_size
    note = None
    if size:
        scale = size / max(w, h)
        w, h = max(2, round(w * scale)), max(2, round(h * scale))
        if even:
            w, h = w - w % 2, h - h % 2
    elif even and (w % 2 or h % 2):
        ew, eh = w - w % 2, h - h % 2
        note = (f"{w}x{h} has an odd side; H.264/VP9 (yuv420p) need even sides: cropped 1 px to {ew}x{eh}")
        w, h = ew, eh
    return (w, h), note


#: transfer characteristics of HDR video (FFmpeg's AVColorTransferCharacteristic)
HDR_TRANSFERS = {16: "PQ", 18: "HLG"}


def _transfer(frame, codec_context) -> int:
    for source in (frame, codec_context):
        try:
            value = int(getattr(source, "color_trc", 2) or 2)
        except (TypeError, ValueError):
            continue
        if value != 2:
            return value
    return 2


def hdr_note(info: VideoInfo) -> Optional[str]:
    """A note for HDR sources, which are processed and written as 8-bit SDR with no tone
    mapping (the style networks and the encoder work in 8-bit sRGB-like values), else None."""
    kind = HDR_TRANSFERS.get(info.color_trc)
    if kind is None:
        return None
    return (f"HDR video ({kind}) is processed and written as 8-bit SDR without tone mapping: "
            "expect flat, washed-out colours; convert it to SDR first for a faithful result")


def yuv_matrix(info: VideoInfo) -> Optional[Tuple[str, bool]]:
    """("bt709" or "bt601", full range?) when the frames are 8-bit yuv420p with a colour matrix
    :func:`cvtools.video.process` converts itself (on the device), else None."""
    if info.kind != "video" or info.pix_fmt not in ("yuv420p", "yuvj420p") or info.width % 2 or info.height % 2:
        return None
    if info.colorspace == 1:
        matrix = "bt709"
    elif info.colorspace in (5, 6):
        matrix = "bt601"
    elif info.colorspace == 2:  # unspecified: what players (and _to_rgb) assume
        matrix = "bt709" if info.height >= 720 else "bt601"
    else:
        return None
    return matrix, info.pix_fmt == "yuvj420p" or info.color_range == 2


def check_range(info: VideoInfo, start: float, duration: Optional[float]) -> None:
    """Refuse a range that is not one of this clip, before any work: ``start`` must be a finite
    number of seconds from 0 and ``duration`` a positive one (UsageError naming it), and ``start``
    before the clip's end (ImageError naming the file and ``start``). A ``duration`` past the end
    reads to the end."""
    if _seconds(start) is None or start < 0:
        raise UsageError(f"start must be a finite number of seconds, at least 0 (not {repr(start)[:40]})",
                         param="start")
    if duration is not None and (_seconds(duration) is None or duration <= 0):
        raise UsageError(f"duration must be a positive, finite number of seconds (not {repr(duration)[:40]})",
                         param="duration")
    longest = MAX_FRAMES / float(info.fps)  # no clip read is longer (an unknown length included)
    if start >= min(info.duration if info.duration is not None else longest, longest):
        length = f" ({info.duration:.2f} s)" if info.duration is not None else ""
        raise ImageError(info.path, f"start={float(start):g} s is past the end of the clip{length}", param="start")


def _seconds(value) -> Optional[float]:
    """``value`` as seconds, or None when it is not a finite number (text, NaN, ±inf, an int
    too large for a float)."""
    if isinstance(value, (str, bytes)):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return seconds if math.isfinite(seconds) else None


def read_frames(path, start: float = 0.0, duration: Optional[float] = None, size: Optional[int] = None,
                even: bool = False, info: Optional[VideoInfo] = None, max_pixels: Optional[int] = -1,
                threads: int = 0, planes: bool = False) -> Iterator[Frame]:
    """Decode the frames of ``path`` from ``start`` seconds, for ``duration`` seconds (None: to the
    end), as H×W×3 uint8 RGB: upright (phone videos' rotation applied), resized to a longer side of
    ``size`` (None: as stored), with even sides if ``even`` (cropped by 1 px). ``info``: from
    :func:`probe_video` (probed here otherwise). Decoding problems are ImageErrors naming the file;
    a video that ends well before its header says (truncated) too."""
    path = Path(path)
    info = info or probe_video(path, max_pixels=max_pixels)
    check_range(info, start, duration)
    (w, h), _ = output_size(info, size, even)
    if info.kind == "animation":
        yield from _read_animation(info, start, duration, (w, h))
        return
    errors = _av_errors()
    end = None if duration is None else start + duration
    index, reached = 0, 0.0  # frames decoded; seconds until the last one leaves the screen
    try:
        with open_input(path, sniff_container(check_file(path))) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"  # frame + slice threads: 1080p H.264 decodes several times faster
            if threads:
                stream.codec_context.thread_count = threads
            for frame, t in _frames_in_range(container, stream, float(info.fps), start, end):
                yield Frame(_to_planes(frame, w, h) if planes else _to_rgb(frame, info, w, h), t, index)
                index += 1
                reached = max(reached, t + _shown_for(frame, 1.0 / float(info.fps)))
    except ImageError:
        raise
    except MemoryError:
        raise ImageError(path, "too large to decode in the memory available") from None
    except errors as exc:
        raise ImageError(path, f"cannot decode frame {index + 1} ({_reason(exc)})") from None
    if index == 0:
        raise ImageError(path, "no frames in the range asked for")
    if end is None or (info.duration is not None and end > info.duration):
        expected = info.frames and info.frames - round(start * float(info.fps))
        # a count estimated from the length (webm, mkv) is too high at a variable rate: frames that
        # last until the end are all there
        early = info.duration is None or reached < 0.9 * (info.duration - start)
        if expected and expected > 10 and index < 0.9 * expected and early:
            raise ImageError(path, f"truncated or damaged: {index} of about {expected} frames decode")


def _frames_in_range(container, stream, fps: float, start: float, end: Optional[float]):
    """(decoded frame, seconds from ``start``) of the frames shown from ``start`` until ``end``, in
    order, each at its own time on the file's clock (shared with the audio, so their offset
    stays): a variable frame rate is kept. The frame on screen at ``start`` (if at most half a
    frame before it) is shown from 0; the frames before it would never be seen and are left out."""
    tb = stream.time_base
    origin = _origin(container, stream)
    if start > 0 and tb:
        container.seek(int((start + origin) / tb), stream=stream, backward=True)
    step = 1.0 / fps
    # a container's rounding of a constant rate (millisecond timestamps): at most one tick of its
    # time base, never a dropped frame's gap (an AVI's tick is a whole frame)
    rounding = min(float(tb) if tb else 0.0, step / 4)
    t = None
    early = None  # the latest frame just before ``start``
    passed = None  # (frame, time) of the latest frame left out as more than half a frame early
    shown = False
    for decoded, frame in enumerate(container.decode(stream), 1):
        clock = float(frame.pts * tb) - origin if (frame.pts is not None and tb) else decoded * step
        t = clock if t is None or abs(clock - t - step) > rounding else t + step
        if t < start - 0.5 * step:
            passed = (frame, t)
            continue
        if end is not None and t >= end - 1e-6:
            break
        if t < start:
            early = frame
            continue
        if early is not None and t > start + 1e-6:
            yield early, 0.0
        early = None
        shown = True
        yield frame, t - start
    if early is not None:
        yield early, 0.0
    elif not shown and passed is not None and passed[1] + _shown_for(passed[0], step) > start + 1e-6:
        yield passed[0], 0.0  # the clip's last frame, still on screen at ``start``


def _shown_for(frame, step: float) -> float:
    """Seconds a decoded frame is shown: its own duration where the container keeps one (each
    block's in webm/mkv), else one frame step."""
    d, tb = getattr(frame, "duration", None), getattr(frame, "time_base", None)
    return float(d * tb) if d and tb else step


def _origin(container, stream) -> float:
    """Seconds of the file's time zero: the earliest start of its streams (the container's), so
    that video and audio measured from it keep their offset."""
    if container.start_time is not None:
        return container.start_time / 1_000_000
    return float((stream.start_time or 0) * stream.time_base) if stream.time_base else 0.0


def _to_planes(frame, w: int, h: int):
    """The frame's yuv420p planes as one (h·3/2)×w uint8 array (converted only if the stream
    changed format or size mid-way)."""
    if frame.format.name not in ("yuv420p", "yuvj420p") or (frame.width, frame.height) != (w, h):
        frame = frame.reformat(width=w, height=h, format="yuv420p", interpolation="AREA")
    return frame.to_ndarray()


def _to_rgb(frame, info: VideoInfo, w: int, h: int):
    """An FFmpeg frame as upright H×W×3 uint8 RGB of (w, h) (after rotation), BT.709 for HD sources
    that do not say, BT.601 below (what players assume)."""
    import numpy as np

    rot = info.rotation
    sw, sh = (h, w) if rot in (90, 270) else (w, h)  # the size to scale to before turning
    cw, ch = frame.width, frame.height
    crop = sw <= cw and sh <= ch and cw - sw <= 1 and ch - sh <= 1  # an odd side: drop the last column/row
    tw, th = (cw, ch) if crop else (sw, sh)
    kwargs = {}
    if frame.format.name.startswith("yuv") and int(frame.colorspace or 2) == 2 and frame.height >= 720:
        kwargs["src_colorspace"] = "ITU709"  # unspecified HD: BT.709 (players do the same)
    rgb = frame.reformat(width=tw, height=th, format="rgb24", interpolation="AREA", **kwargs).to_ndarray()
    if crop:
        rgb = rgb[:sh, :sw]
    if rot:
        rgb = np.rot90(rgb, k=-rot // 90)
    return np.ascontiguousarray(rgb)


def _read_animation(info: VideoInfo, start: float, duration: Optional[float], size: Tuple[int, int]):
    import numpy as np
    from PIL import Image

    end = None if duration is None else start + duration
    t = 0.0
    index = 0
    t0 = None
    w, h = size
    try:
        with Image.open(info.path, formats=(info.codec.upper(),)) as im:
            for k, d in enumerate(info.durations):
                if end is not None and t >= end - 1e-6:
                    break
                if t + d > start + 1e-6:
                    im.seek(k)
                    rgb, alpha = (_fitted(p, w, h) if p is not None else None for p in _on_white(im))
                    if t0 is None:
                        t0 = max(t, start)
                    leaves = t + d if end is None else min(t + d, end)  # a cut ends the last frame
                    yield Frame(np.array(rgb, dtype=np.uint8), FrameTime(max(t, start) - t0, leaves - t0), index,
                                None if alpha is None else np.array(alpha, dtype=np.uint8))
                    index += 1
                t += d
    except ImageError:
        raise
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except MemoryError:
        raise ImageError(info.path, "too large to decode in the memory available") from None
    except Exception as exc:
        raise ImageError(info.path, f"cannot decode frame {index + 1} ({_reason(exc)})") from None
    if index == 0:
        raise ImageError(info.path, "no frames in the range asked for")


def _on_white(im):
    """(RGB, alpha or None) of the frame: its transparent areas laid on white, as a browser's page
    shows them (the colours hidden under them, often black, are no part of the picture, and must
    not bleed into the strokes), and their opacity kept for outputs that have an alpha channel."""
    from PIL import Image

    if not im.has_transparency_data:
        return im.convert("RGB"), None
    rgba = im.convert("RGBA")
    alpha = rgba.getchannel("A")
    if alpha.getextrema()[0] == 255:
        return rgba.convert("RGB"), None
    return Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB"), alpha


def _fitted(image, w: int, h: int):
    """``image`` (PIL) at w×h: cropped by the pixel an even size takes, else resized (Lanczos)."""
    from PIL import Image

    if image.size == (w, h):
        return image
    iw, ih = image.size
    if iw - w <= 1 and ih - h <= 1 and iw >= w and ih >= h:
        return image.crop((0, 0, w, h))
    return image.resize((w, h), Image.LANCZOS)


# ----------------------------------------------------------------------------- writing

#: Audio codecs each container takes as they are (copied packet for packet); others are re-encoded.
_AUDIO_COPY = {
    "mp4": {"aac", "mp3", "opus", "alac", "ac3", "eac3", "flac"},
    "mov": {"aac", "mp3", "alac", "ac3", "eac3", "pcm_s16le", "pcm_s24le", "pcm_s16be"},
    "matroska": None,  # anything
    "webm": {"opus", "vorbis"},
}


#: subtitle codecs each container takes as they are (stream copy); others are left out, with a note
_SUBTITLE_COPY = {
    "mp4": {"mov_text"},
    "mov": {"mov_text"},
    "matroska": {"subrip", "srt", "ass", "ssa", "webvtt", "mov_text", "dvd_subtitle", "hdmv_pgs_subtitle",
                 "dvb_subtitle"},
    "webm": {"webvtt"},
}


def _audio_layout(layout) -> str:
    """The channel layout an encoder is given for a source's ``layout``: its own where its channels
    are named; the standard one for its channel count (mono, stereo, 5.1...) where their order is
    unspecified ("2 channels", as the AVI and Matroska demuxers report PCM: AAC refuses it);
    stereo when unknown."""
    n = layout.nb_channels if layout is not None else 0
    if not n:
        return "stereo"
    if all(ch.name == "NONE" for ch in layout.channels):
        return av_module().AudioLayout(f"{n}c").name  # FFmpeg's default layout for n channels
    return layout.name


def _audio_settings(codec: str, ain) -> Tuple[int, str]:
    """(sample rate, layout) for re-encoding the audio of decoder context ``ain`` with ``codec``:
    its rate where the encoder takes it (else 48 kHz) and :func:`_audio_layout` (else its
    channel count's standard layout, else stereo), as an encoder of their own opens with them.
    Raises what opening the encoder raises when none does."""
    av = av_module()
    encoder = av.Codec(codec, "w")
    rate = ain.sample_rate or 48000
    if encoder.audio_rates and rate not in encoder.audio_rates:
        rate = 48000
    n = ain.layout.nb_channels if ain.layout is not None else 0
    tried = [_audio_layout(ain.layout)] + ([av.AudioLayout(f"{n}c").name] if n else []) + ["stereo"]
    error = None
    for layout in dict.fromkeys(tried):  # in order, each once
        trial = av.CodecContext.create(codec, "w")
        trial.sample_rate, trial.layout = rate, layout
        trial.format = encoder.audio_formats[0]
        trial.time_base = Fraction(1, rate)
        try:
            trial.open()
            return rate, layout
        except Exception as exc:
            error = error or exc
    raise error


class AudioSource:
    """The audio and the subtitle tracks of ``path`` between ``start`` and ``start + duration``
    seconds, muxed into a :class:`VideoWriter` as the video advances (so the file is
    interleaved). Subtitles are copied as they are where the output container takes their
    codec (:data:`_SUBTITLE_COPY`); a cue that starts before ``start`` is left out."""

    def __init__(self, path, start: float = 0.0, duration: Optional[float] = None):
        self.path = Path(path)
        self.start = float(start)
        self.end = None if duration is None else self.start + float(duration)

    def open(self):
        """A demuxer of its own on the file (each track is read at its own pace), or None when it
        cannot be opened (the video is still written)."""
        try:
            return open_input(self.path, sniff_container(check_file(self.path)))
        except Exception:
            return None


def _moved(packet, start: float, origin: float, stream):
    """A copied packet re-timed to the output (its range's ``start`` and the file's ``origin``
    become 0) and given to the output's ``stream``."""
    shift = round(start / packet.time_base) + round(origin / packet.time_base)
    packet.pts -= shift
    if packet.dts is not None:
        packet.dts -= shift
    packet.stream = stream
    return packet


_CHUNKS_ENV = "CVTOOLS_ENCODE_CHUNKS"  # cvtools.video.chunked.ENV (not imported: it is lazy)


def _x264_defaults():
    # CRF 18 is visually lossless for stylized frames; on CUDA stylize_video asks for superfast
    # (process.GPU_X264_PRESET: veryfast held the H100 pipeline to 47 frames/s at 1080p)
    return os.environ.get("CVTOOLS_X264_PRESET", "veryfast")


class VideoWriter:
    """Encode RGB frames into ``path`` (container ``fmt``: mp4, mov, matroska, webm), optionally with
    the audio of an :class:`AudioSource`. ``write(rgb, time)`` takes H×W×3 uint8 frames of the size
    given (even sides) and their time in seconds; ``close()`` flushes and finishes the file.
    ``comment``: text stored in the container's metadata (the provenance marker).

    ``chunks``: H.264 encoded by that many libx264 encoders at once, each taking a chunk of
    ``chunk_frames`` frames (default 2 s) that starts with a keyframe, muxed into the one video
    stream (:mod:`cvtools.video.chunked`); 0 or 1: one serial encoder. None: the environment
    variable ``CVTOOLS_ENCODE_CHUNKS``, else serial (:data:`cvtools.video.chunked.AUTO_CHUNKS`). VP9 is always
    serial; so is the rest of a clip from its first frame off the frame rate's grid."""

    def __init__(self, path, width: int, height: int, fps: Fraction, fmt: str = "mp4",
                 audio: Optional[AudioSource] = None, crf: Optional[int] = None, preset: Optional[str] = None,
                 comment: Optional[str] = None, threads: int = 0, on_note: Optional[Callable[[str], None]] = None,
                 chunks: Optional[int] = None, chunk_frames: Optional[int] = None):
        av = av_module()
        if width % 2 or height % 2:
            raise ValueError(f"frames must have even sides for yuv420p, not {width}x{height}")
        self.path = str(path)
        self.width, self.height = int(width), int(height)
        self.fmt = fmt
        self.fps = Fraction(fps).limit_denominator(1001) if not isinstance(fps, Fraction) else fps
        self.on_note = on_note or (lambda msg: None)
        options = {"movflags": "+faststart"} if fmt in ("mp4", "mov") else {}
        self.container = av.open(self.path, "w", format=fmt, options=options)
        try:
            if comment:
                self.container.metadata["comment"] = comment
            hd = height >= 720
            if fmt == "webm":
                stream = self.container.add_stream("libvpx-vp9", rate=self.fps)
                stream.options = {"crf": str(crf if crf is not None else 30), "b": "0", "deadline": "realtime",
                                  "cpu-used": "8", "row-mt": "1"}
            else:
                stream = self.container.add_stream("libx264", rate=self.fps)
                stream.options = {"crf": str(crf if crf is not None else 18), "preset": preset or _x264_defaults()}
            stream.width, stream.height = self.width, self.height
            stream.pix_fmt = "yuv420p"
            stream.codec_context.thread_count = threads
            # PyAV opens encoders with slice threads; x264 then splits every frame into one
            # slice per core, which scales poorly on many cores. Frame threads (what FFmpeg
            # itself defaults to) encode whole frames in parallel: BENCHMARKS.md, "Video"
            stream.thread_type = "AUTO"
            self.time_base = Fraction(1, 90000) if fmt != "webm" else Fraction(1, 1000)
            stream.time_base = self.time_base
            stream.codec_context.time_base = self.time_base
            cs = "ITU709" if hd else "ITU601"
            self._colorspace = cs
            try:  # tag what the pixels are (players otherwise guess from the size)
                cc = stream.codec_context
                cc.colorspace = 1 if hd else 6
                cc.color_primaries = 1 if hd else 6
                cc.color_trc = 1 if hd else 6
                cc.color_range = 1  # limited (MPEG)
            except Exception:
                pass
            self.stream = stream
            self.audio = None
            self.subtitles = None
            self.notify_subtitles = None
            if audio is not None:
                self._open_audio(audio)
                self._open_subtitles(audio)
            self._last_pts, self._last_dts, self.frames, self.chunked = -1, None, 0, None
            self._start_durations()
            if fmt != "webm":  # VP9 stays one encoder
                self._start_chunks(chunks, chunk_frames, threads)
        except BaseException:
            self.container.close()
            raise

    def _start_durations(self) -> None:
        """What is kept to give packets their frames' durations (:meth:`_mux_last_video`)."""
        self._durations: dict = {}  # pts -> seconds shown, of frames that said when they end
        self._end: Optional[Fraction] = None  # when the latest frame leaves the screen, if it said
        self._held = None  # the latest video packet: the last one's duration is set at close
        self._first_pts, self._first_dts = 0, None  # the first frame's; the first packet's (B-frames: earlier)
        self._reach = 0  # the latest time + duration of the packets muxed

    # -- audio
    def _open_audio(self, source: AudioSource) -> None:
        src = source.open()
        if src is None:
            return
        if not src.streams.audio:
            src.close()
            return
        ain = src.streams.audio[0]
        name = ain.codec_context.name
        allowed = _AUDIO_COPY.get(self.fmt, set())
        copy = allowed is None or name in allowed
        if copy:
            aout = self.container.add_stream_from_template(ain)
            self.notify_audio = f"audio copied ({name})"
        else:
            codec = "libopus" if self.fmt == "webm" else "aac"
            label = "Opus" if codec == "libopus" else "AAC"
            try:  # tried on an encoder of its own first: a stream once added cannot be taken out again
                rate, layout = _audio_settings(codec, ain.codec_context)
            except Exception as exc:  # never the whole video over its sound
                src.close()
                self.on_note(f"{source.path.name}: sound dropped: the {label} encoder refused its {name} audio "
                             f"({_reason(exc)}); the video is written without it")
                return
            aout = self.container.add_stream(codec, rate=rate)
            aout.layout = layout
            self.notify_audio = f"audio re-encoded ({name} -> {label})"
            self._resampler = None
        tb = ain.time_base
        if source.start > 0 and tb:
            src.seek(int((source.start + _origin(src, ain)) / tb), stream=ain, backward=True)
        self.audio = {"src": src, "in": ain, "out": aout, "copy": copy, "source": source,
                      "packets": src.demux(ain), "origin": _origin(src, ain),
                      "done": False, "samples": 0}

    def _mux_audio_until(self, t: Optional[float]) -> None:
        """Mux the source's audio up to ``t`` seconds of output (None: all that is left in range)."""
        a = self.audio
        if a is None or a["done"]:
            return
        src_start, src_end = a["source"].start, a["source"].end
        aout = a["out"]
        pending = a.get("pending")
        while True:
            if pending is None:
                try:
                    pending = next(a["packets"])
                except StopIteration:
                    pending = None
                except Exception:  # damaged audio: keep the video, stop the audio here
                    pending = None
                if pending is None:
                    a["done"] = True
                    self._flush_audio_encoder()
                    break
                if pending.pts is None or pending.size == 0:
                    pending = None
                    continue
            pt = float(pending.pts * pending.time_base) - a["origin"]
            if src_end is not None and pt >= src_end:
                a["done"] = True
                self._flush_audio_encoder()
                pending = None
                break
            if pt + 1e-6 < src_start:
                pending = None
                continue
            rel = pt - src_start
            if t is not None and rel > t:
                break  # not yet: keep it for later
            if a["copy"]:
                self.container.mux(_moved(pending, src_start, a["origin"], aout))
            else:
                for frame in pending.decode():
                    self._encode_audio_frame(frame, rel)
            pending = None
        a["pending"] = pending

    def _encode_audio_frame(self, frame, rel: float) -> None:
        a = self.audio
        aout = a["out"]
        if getattr(self, "_resampler", None) is None:
            av = av_module()
            self._resampler = av.AudioResampler(format=aout.codec_context.format or "fltp",
                                                layout=aout.codec_context.layout, rate=aout.codec_context.rate)
        for rf in self._resampler.resample(frame):
            rf.pts = None  # the encoder counts samples
            for packet in aout.encode(rf):
                self.container.mux(packet)

    def _flush_audio_encoder(self) -> None:
        a = self.audio
        if a is None or a["copy"] or a.get("flushed"):
            return
        a["flushed"] = True
        if getattr(self, "_resampler", None) is not None:
            for rf in self._resampler.resample(None):
                rf.pts = None
                for packet in a["out"].encode(rf):
                    self.container.mux(packet)
        for packet in a["out"].encode(None):
            self.container.mux(packet)

    # -- subtitles
    def _open_subtitles(self, source: AudioSource) -> None:
        src = source.open()
        if src is None:
            return
        tracks = list(src.streams.subtitles)
        allowed = _SUBTITLE_COPY.get(self.fmt, set())
        names = [t.codec_context.name or "unknown" for t in tracks]
        kept = [t for t, name in zip(tracks, names) if name in allowed]
        left = sorted({name for t, name in zip(tracks, names) if t not in kept})
        if left:
            where = {"mp4": "mp4", "mov": "mov", "webm": "webm", "matroska": "mkv"}.get(self.fmt, self.fmt)
            self.on_note(f"{source.path.name}: subtitles ({', '.join(left)}) not copied: {where} cannot hold "
                        "them as they are; -o NAME.mkv keeps them")
        if not kept:
            src.close()
            return
        try:
            out = {t.index: self.container.add_stream_from_template(t) for t in kept}
        except Exception as exc:  # a codec the muxer refuses after all: keep the video
            src.close()
            self.on_note(f"{source.path.name}: subtitles not copied ({_reason(exc)})")
            return
        origin = _origin(src, kept[0])
        if source.start > 0:
            try:  # to the range's start (earlier cues are dropped anyway), not a read from the top
                src.seek(int((source.start + origin) * 1_000_000), backward=True)
            except Exception:
                pass
        n = len(kept)
        self.notify_subtitles = f"{n} subtitle track{'s' if n > 1 else ''} copied"
        self.subtitles = {"src": src, "out": out, "source": source, "packets": src.demux(*kept),
                          "origin": origin, "pending": None, "done": False}

    def _mux_subtitles_until(self, t: Optional[float]) -> None:
        """Mux the subtitle cues that start up to ``t`` seconds of output (None: all in range)."""
        sub = self.subtitles
        if sub is None or sub["done"]:
            return
        start, end = sub["source"].start, sub["source"].end
        pending = sub["pending"]
        while True:
            if pending is None:
                try:
                    pending = next(sub["packets"])
                except Exception:  # the end, or damaged subtitles: keep the video, stop here
                    sub["done"] = True
                    break
                if pending.pts is None or pending.size == 0 or pending.stream.index not in sub["out"]:
                    pending = None
                    continue
            pt = float(pending.pts * pending.time_base) - sub["origin"]
            if pt + 1e-6 < start:
                pending = None
                continue
            if end is not None and pt >= end:
                sub["done"] = True  # past the range, as the audio stops (the rest is not read)
                pending = None
                break
            if t is not None and pt - start > t:
                break  # not yet: keep it for later
            _moved(pending, start, sub["origin"], sub["out"][pending.stream.index])
            try:
                self.container.mux(pending)
            except Exception as exc:  # a cue the muxer refuses (a damaged track): keep the video
                sub["done"] = True
                self.on_note(f"{sub['source'].path.name}: subtitles stopped at {pt:.1f} s ({_reason(exc)})")
                pending = None
                break
            pending = None
        sub["pending"] = pending

    # -- video
    def write(self, rgb, time: Optional[float] = None, end: Optional[float] = None, alpha=None) -> None:
        """Encode one H×W×3 uint8 frame shown at ``time`` seconds (None: after the previous one at
        the frame rate) until ``end`` (None: what a :class:`FrameTime` says, else the next frame's
        time; for the last frame, one frame at the frame rate). ``alpha`` is ignored: these
        containers' streams have none (an animation's transparent areas arrive laid on white)."""
        av = av_module()
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame = frame.reformat(format="yuv420p", dst_colorspace=self._colorspace, interpolation="AREA")
        self.write_frame(frame, time, end)

    def write_planes(self, planes, time: Optional[float] = None, end: Optional[float] = None) -> None:
        """Encode one frame given as yuv420p planes ((H·3/2)×W uint8: Y, U, V), already in the
        writer's colour matrix (:attr:`matrix`) and limited range."""
        av = av_module()
        self.write_frame(av.VideoFrame.from_ndarray(planes, format="yuv420p"), time, end)

    @property
    def matrix(self) -> str:
        """The colour matrix the file is tagged with and frames are converted by."""
        return "bt709" if self._colorspace == "ITU709" else "bt601"

    def write_frame(self, frame, time: Optional[float] = None, end: Optional[float] = None) -> None:
        """Encode a PyAV VideoFrame (yuv420p of the writer's size), shown from ``time`` until ``end``
        as :meth:`write` says. With chunks the frame is held until its chunk is encoded: give a
        new frame each time, as ``write`` does."""
        step = 1 / (self.fps * self.time_base)
        if time is None:
            pts = self._last_pts + round(step) if self._last_pts >= 0 else 0
        else:  # the frame's own time (read_frames keeps a constant rate exact and a variable one as it is)
            pts = round(Fraction(time) / self.time_base)
        pts = max(pts, self._last_pts + 1)
        if self.chunked is not None and self._last_pts >= 0 and abs(pts - self._last_pts - step) > 1:
            # off the frame rate's grid (a variable rate): chunks' B-frame delays would no longer
            # line up, so the rest goes through the one serial encoder
            self._stop_chunks()
        if self._last_pts < 0:
            self._first_pts = pts
        self._last_pts = pts
        end = _end_of(time, end) if time is not None else None
        self._end = None if end is None else Fraction(end)
        if end is not None:  # its packet says so (the muxer otherwise gives the last frame one frame step)
            self._durations[pts] = self._end - pts * self.time_base
        frame.pts = pts
        frame.time_base = self.time_base
        if self.chunked is not None:
            self.chunked.add(frame)  # muxed, with the audio up to it, once its chunk is encoded
        else:
            self._encode_serially(frame)
        self.frames += 1

    def _encode_serially(self, frame) -> None:
        self._mux_extras_until(float(frame.pts * self.time_base))
        for packet in self.stream.encode(frame):
            self._mux_video(packet)

    def _mux_extras_until(self, t: Optional[float]) -> None:
        if self.audio is not None:
            self._mux_audio_until(t)
        if self.subtitles is not None:
            self._mux_subtitles_until(t)

    def _mux_video(self, packet) -> None:
        """Mux one video packet, its decode timestamp checked: strictly after the previous one's.
        Only a chunk's first packets can fall behind (a chunk's B-frame delay longer than the
        previous one's, at a variable rate): they are moved up to one tick after it when that
        stays at or before their presentation time; otherwise the file would be broken, so this
        raises."""
        if packet.dts is not None and self._last_dts is not None and packet.dts <= self._last_dts:
            if packet.pts is None or self._last_dts + 1 > packet.pts:
                raise ImageError(self.path, f"cannot encode: decode timestamps out of order at "
                                            f"{float(packet.dts * packet.time_base):.3f} s; set {_CHUNKS_ENV}=0")
            packet.dts = self._last_dts + 1
        if packet.dts is not None:
            self._last_dts = packet.dts
        shown = self._durations.pop(packet.pts, None)
        # a track ends at the latest frame's time plus its duration (webm/mkv; mp4/mov's edit list)
        if shown is not None and shown > 0 and packet.time_base:
            packet.duration = max(1, round(shown / packet.time_base))
        if self._first_dts is None and packet.dts is not None:
            self._first_dts = packet.dts
        held, self._held = self._held, packet
        if held is not None:
            if held.pts is not None and held.duration:
                self._reach = max(self._reach, held.pts + held.duration)
            self.container.mux(held)

    def _mux_last_video(self) -> None:
        """Mux the packet held back, the last in decode order. mp4/mov make a track as long as the
        shorter of: its frames' latest time plus duration, and its decode times' span plus this
        packet's duration (B-frames reorder frames, and their decode times start early). When the
        latest frame said when it ends, this packet's duration brings neither length short of it,
        and the decode span exactly to it where it can (players' frame rates come from that one)."""
        packet, self._held = self._held, None
        if packet is None:
            return
        known = self._end is not None and self._first_dts is not None and None not in (packet.dts, packet.pts)
        if known and self.fmt in ("mp4", "mov") and packet.time_base == self.time_base:
            end = round(self._end / self.time_base)
            early = self._first_pts - self._first_dts  # the decode times' head start
            packet.duration = max(1, end - packet.dts - early)  # the decode times' span: exact where it can be
            if max(self._reach, packet.pts + packet.duration) < end:
                packet.duration = end - packet.pts  # the frames' span is never short (that one is shown)
        self.container.mux(packet)

    def _mux_chunk_packet(self, packet) -> None:
        """A chunk encoder's packet into the stream, the audio and subtitles up to it first (the
        interleaving of the serial path, whose audio leads its packets by the encoder's delay)."""
        self._mux_extras_until(float(packet.pts * packet.time_base) if packet.pts is not None else None)
        packet.stream = self.stream
        self._mux_video(packet)

    # -- chunks (cvtools.video.chunked)
    def _start_chunks(self, chunks: Optional[int], chunk_frames: Optional[int], threads: int) -> None:
        """Encode in chunks when :func:`~cvtools.video.chunked.plan_chunks` says so: the stream's
        own encoder is opened (the header written) with the chunk encoders' thread count, and
        one chunk encoder's SPS/PPS must match it, else the serial encoder it is."""
        from cvtools.video.chunked import ChunkedEncoder, encoder_like, plan_chunks

        count, frames = plan_chunks(chunks, self.width, self.height, self.fps, chunk_frames)
        if count <= 1:
            return
        per_chunk = threads or max(1, (os.cpu_count() or 1) // count)
        template = self.stream.codec_context
        template.thread_count = per_chunk
        options = dict(template.options)  # before opening the stream's encoder consumes them
        self.container.start_encoding()  # opens the stream's encoder (GLOBAL_HEADER): its SPS/PPS
        if encoder_like(template, options, 1).extradata != template.extradata:
            self.on_note(f"{Path(self.path).name}: chunked H.264 encoders disagree on the stream parameters; "
                         "encoding serially")
            return
        self.chunked = ChunkedEncoder(template, options, count, frames, per_chunk, template.extradata,
                                      self._mux_chunk_packet)

    def _stop_chunks(self) -> None:
        """Mux the chunks under way and encode the frames still buffered with the stream's own
        encoder, which takes the rest of the clip."""
        chunked, self.chunked = self.chunked, None
        for frame in chunked.drain():
            self._encode_serially(frame)

    def close(self) -> None:
        """Flush the encoders, mux the rest of the audio, finish the file."""
        try:
            if self.chunked is not None:
                self.chunked.finish()
            else:
                for packet in self.stream.encode(None):
                    self._mux_video(packet)
            self._mux_last_video()
            self._mux_extras_until(None)
        except BaseException:
            if self.chunked is not None:
                self.chunked.abort()  # no worker left encoding for a file that is being given up
            raise
        finally:
            self._close_handles()

    def _close_handles(self) -> None:
        for extra in (self.audio, self.subtitles):
            if extra is not None:
                try:
                    extra["src"].close()
                except Exception:
                    pass
        self.container.close()

    def abort(self) -> None:
        """Close without finishing (the caller deletes the file); chunk encoders stop first."""
        try:
            if self.chunked is not None:
                self.chunked.abort()
            self._close_handles()
        except Exception:
            pass


class AnimationWriter:
    """Collect frames and save an animated GIF or WebP (Pillow) at ``close()``. Frames are kept in
    memory (refused over :data:`MAX_ANIMATION_BYTES`)."""

    def __init__(self, path, width: int, height: int, fps: Fraction, fmt: str, save_kwargs: Optional[dict] = None,
                 expected_frames: Optional[int] = None):
        if expected_frames and expected_frames * width * height * 3 > MAX_ANIMATION_BYTES:
            raise ImageError(path, f"{expected_frames} frames of {width}x{height} are too many for a {fmt} animation "
                                   "(held in memory); write .mp4 instead, or a shorter `duration`", param="duration")
        self.path, self.fmt, self.fps = str(path), fmt, fps
        self.frames, self.times = [], []
        self.end: Optional[float] = None  # when the last frame written leaves the screen, if known
        self.save_kwargs = save_kwargs or {}
        self.bytes = 0
        self.width, self.height = width, height

    def write(self, rgb, time: Optional[float] = None, end: Optional[float] = None, alpha=None) -> None:
        """Add one H×W×3 uint8 frame shown at ``time`` seconds (None: after the previous one at the
        frame rate) until ``end`` (None: what a :class:`FrameTime` says, else the next frame's
        time; for the last frame, one frame at the frame rate); ``alpha``: its H×W uint8 opacity
        (the input frame's: transparent areas stay transparent), or None for an opaque frame."""
        from PIL import Image

        self.bytes += rgb.nbytes
        if self.bytes > MAX_ANIMATION_BYTES:
            raise ImageError(self.path, f"too many frames for a {self.fmt} animation (held in memory); write .mp4 "
                                        "instead, or a shorter `duration`", param="duration")
        frame = Image.fromarray(rgb, "RGB")
        if alpha is not None:
            frame.putalpha(Image.fromarray(alpha, "L"))
        self.frames.append(frame)
        self.times.append(len(self.times) / float(self.fps) if time is None else float(time))
        self.end = _end_of(time, end)

    def close(self) -> None:
        if not self.frames:
            raise ImageError(self.path, "no frames to write")
        # the last frame keeps its own duration: the frame rate is only the typical (median) one
        last = self.times[-1] + 1.0 / float(self.fps)
        if self.end is not None and self.end > self.times[-1]:
            last = self.end
        ends = self.times[1:] + [last]
        durations = [max(20, round((e - s) * 1000)) for s, e in zip(self.times, ends)]
        if any(f.mode == "RGBA" for f in self.frames):  # one mode for all: opaque frames get a full alpha
            self.frames = [f if f.mode == "RGBA" else f.convert("RGBA") for f in self.frames]
        kwargs = dict(duration=durations, loop=0)
        if self.fmt == "WEBP":
            kwargs.update(quality=90, method=4)
        elif self.frames[0].mode == "RGBA":  # each frame replaces the last, its transparent areas too
            kwargs.update(optimize=False, disposal=2)
        else:
            kwargs.update(optimize=False, disposal=1)
        kwargs.update(self.save_kwargs)
        if self.fmt == "WEBP":
            # lossy colours with the alpha kept: Pillow 13 / libwebp 1.6's lossy animation crops a
            # frame's transparent edges away and can drop the alpha plane (measured: cvtools.io.webp)
            from cvtools.io.webp import save_animated_webp

            save_animated_webp(self.path, self.frames, **kwargs)
        else:
            self.frames[0].save(self.path, format=self.fmt, save_all=True, append_images=self.frames[1:], **kwargs)

    def abort(self) -> None:
        self.frames = []


def open_writer(path, tmp, width: int, height: int, fps, audio: Optional[AudioSource] = None,
                comment: Optional[str] = None, on_note=None, expected_frames: Optional[int] = None, **options):
    """A writer for the container named by ``path``'s extension (``tmp``: where the bytes go)."""
    ext = Path(path).suffix.lower()
    if ext in WRITABLE_VIDEO:
        return VideoWriter(tmp, width, height, fps, fmt=WRITABLE_VIDEO[ext], audio=audio, comment=comment,
                           on_note=on_note, **options)
    if ext in ANIMATION_EXTENSIONS:
        fmt = "GIF" if ext == ".gif" else "WEBP"
        extra = {}
        if comment:
            if fmt == "GIF":
                extra["comment"] = comment.encode("ascii", "replace")
            else:
                from PIL import Image

                exif = Image.Exif()
                exif[0x010E] = comment
                extra["exif"] = exif.tobytes()
        return AnimationWriter(tmp, width, height, fps, fmt, extra, expected_frames)
    raise ImageError(path, f"unknown video format {ext or '(no extension)'!r}; use .mp4, .mov, .mkv, .webm, .gif "
                           "or .webp")


def animation_drops_note(src, dst, has_audio: bool, subtitles=()) -> Optional[str]:
    """The note for the tracks of ``src`` an animation output (GIF, WebP) ``dst`` cannot carry
    (its sound, its subtitles), worded as the subtitles a video container cannot hold are noted
    (:meth:`VideoWriter._open_subtitles`); None when there is nothing to drop or ``dst`` is a video."""
    ext = Path(dst).suffix.lower()
    if ext not in ANIMATION_EXTENSIONS or not (has_audio or subtitles):
        return None
    kind = "GIF" if ext == ".gif" else "animated WebP"
    dropped = " and ".join(x for x in ("sound" if has_audio else "", "subtitles" if subtitles else "") if x)
    tracks = " or ".join(x for x in ("audio" if has_audio else "", "subtitle" if subtitles else "") if x)
    keeps = "-o NAME.mp4 keeps it" if not subtitles else "-o NAME.mkv keeps them"
    return f"{Path(src).name}: {dropped} dropped: {kind} has no {tracks} track; {keeps}"


def check_output_format(path) -> None:
    """Refuse, before any work, an output extension no video writer handles."""
    ext = Path(path).suffix.lower()
    if ext not in WRITABLE_VIDEO and ext not in ANIMATION_EXTENSIONS:
        raise ImageError(path, f"unknown video format {ext or '(no extension)'!r}; use .mp4, .mov, .mkv, .webm, "
                               ".gif or .webp")


def _as_uint8(frame):
    import numpy as np

    if isinstance(frame, np.ndarray):
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frames must be H×W×3 uint8, not {frame.dtype} {frame.shape}")
        return np.ascontiguousarray(frame)
    import torch

    t = frame.detach()
    if t.dim() == 4:
        t = t[0]
    if t.dtype != torch.uint8:
        t = (t.float().clamp(0, 1) * 255).round().to(torch.uint8)
    return np.ascontiguousarray(t.permute(1, 2, 0).cpu().numpy())


def _warn(note: str) -> None:
    """A library call's notes with no ``on_note`` to take them: a Python warning, not silence."""
    import warnings

    warnings.warn(note, stacklevel=3)


def write_video(path, frames: Iterable, fps=24, audio_from: Optional[Union[str, Tuple]] = None,
                crf: Optional[int] = None, preset: Optional[str] = None, overwrite: Optional[bool] = True,
                comment: Optional[str] = None, on_note: Optional[Callable[[str], None]] = None) -> Path:
    """Write ``frames`` (H×W×3 uint8 arrays, 3×H×W float tensors in [0, 1], or :class:`Frame` objects as
    :func:`read_frames` yields them, each then at its own time and with its transparency; all one size) to
    ``path`` atomically; the container follows the extension (.mp4/.mov/.mkv: H.264, .webm: VP9,
    .gif/.webp: animated through Pillow). ``audio_from``: a video path, or (path, start, duration),
    whose audio goes along; a GIF or WebP cannot carry it, which is noted to ``on_note`` (as are tracks
    an encoder refuses), else given as a Python warning. Odd sides are cropped by 1 px for yuv420p
    (noted to ``on_note`` only). Returns the path."""
    import numpy as np

    from cvtools.io.atomic import atomic_write

    path = Path(path)
    check_output_format(path)
    audio = None
    if audio_from is not None:
        audio = AudioSource(*audio_from) if isinstance(audio_from, (tuple, list)) else AudioSource(audio_from)
        if path.suffix.lower() in ANIMATION_EXTENSIONS:  # nothing of it can go along: say so, not silently
            info = probe_video(audio.path)
            note = animation_drops_note(audio.path, path, info.has_audio, info.subtitles)
            if note:
                (on_note or _warn)(note)
            audio = None
    it = iter(frames)

    def write(tmp):
        writer = None
        try:
            for k, f in enumerate(it):
                frame = f if isinstance(f, Frame) else None  # read_frames' own: keep its time and alpha
                rgb = _as_uint8(frame.rgb if frame is not None else f)
                if writer is None:
                    h, w = rgb.shape[:2]
                    video = path.suffix.lower() in WRITABLE_VIDEO
                    ew, eh = (w - w % 2, h - h % 2) if video else (w, h)
                    if (ew, eh) != (w, h) and on_note:
                        on_note(f"{w}x{h} has an odd side; cropped 1 px to {ew}x{eh} for yuv420p")
                    writer = open_writer(path, tmp, ew, eh, Fraction(fps).limit_denominator(1001), audio=audio,
                                         comment=comment, on_note=on_note or _warn,
                                         **({} if not video else {"crf": crf, "preset": preset}))
                if rgb.shape[0] != writer.height or rgb.shape[1] != writer.width:
                    rgb = rgb[:writer.height, :writer.width]
                    if rgb.shape[:2] != (writer.height, writer.width):
                        raise ValueError(f"frame {k} is {rgb.shape}, not {writer.width}x{writer.height} like the first")
                if frame is None:
                    writer.write(np.ascontiguousarray(rgb))
                else:
                    writer.write(np.ascontiguousarray(rgb), frame.time, alpha=frame.alpha)
            if writer is None:
                raise ImageError(path, "no frames to write")
            writer.close()
        except BaseException:
            if writer is not None:
                writer.abort()
            raise

    atomic_write(path, write, overwrite=overwrite)
    return path
