"""Chunked H.264 encoding (cvtools/video/chunked.py through VideoWriter): small frames (128×96),
a few dozen of them, 2 or 3 encoders forced on with chunks of 5-8 frames.

Each frame has a flat level of its own (16 + 5·k in every channel) and a bright bar that moves
4 px a frame (motion, so x264 uses B-frames and their reordering is exercised). A decoded frame
is identified as the source it is nearest to: at CRF 18 a flat area comes back within a level
or two and the bar's edges cost a few more, a mean absolute difference under 3 levels, while the
neighbouring frames are at least 5 levels away everywhere."""

from __future__ import annotations

import threading
from fractions import Fraction

import av
import numpy as np
import pytest
from test_video_io import audio_of, make_clip

from cvtools.errors import UsageError
from cvtools.video import chunked
from cvtools.video.io import AudioSource, VideoWriter, write_video

W, H, FPS = 128, 96, 24
TICKS = 90000 // FPS  # the writer's time base is 1/90000 s


def source(k: int) -> np.ndarray:
    img = np.full((H, W, 3), 16 + 5 * k, np.uint8)
    x = (4 * k) % (W - 8)
    img[:, x:x + 8] = 235
    return img


def write(path, n, fmt="mp4", times=None, **kwargs) -> VideoWriter:
    writer = VideoWriter(path, W, H, FPS, fmt=fmt, **kwargs)
    for k in range(n):
        writer.write(source(k), None if times is None else times[k])
    writer.close()
    return writer


def packets_of(path):
    """(pts, dts, keyframe) of the video packets in file order, and the number of video streams."""
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        packets = [(p.pts, p.dts, p.is_keyframe) for p in c.demux(stream) if p.size]
        return packets, len(c.streams.video), stream.time_base


def decoded(path):
    """(pts in seconds, RGB) of every decoded frame, in presentation order."""
    with av.open(str(path)) as c:
        return [(float(f.pts * f.time_base), f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]


def psnr(a, b) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255.0 ** 2 / max(mse, 1e-12))


def check_frames(path, n, times=None):
    frames = decoded(path)
    assert len(frames) == n
    sources = [source(k).astype(np.int16) for k in range(n)]
    for k, (t, rgb) in enumerate(frames):
        errors = [float(np.abs(rgb.astype(np.int16) - s).mean()) for s in sources]
        assert int(np.argmin(errors)) == k and errors[k] < 3.0, (k, errors[k])
        expected = k / FPS if times is None else times[k]
        assert abs(t - round(expected * 90000) / 90000) < 1e-3, (k, t, expected)


@pytest.mark.parametrize("fmt,ext", [("mp4", "mp4"), ("mov", "mov"), ("matroska", "mkv")])
def test_chunks_make_one_stream_in_order_with_keyframes_at_chunk_starts(tmp_path, fmt, ext):
    n, g = 30, 8
    writer = write(tmp_path / f"out.{ext}", n, fmt, chunks=3, chunk_frames=g)
    assert writer.frames == n
    check_frames(tmp_path / f"out.{ext}", n)
    packets, streams, tb = packets_of(tmp_path / f"out.{ext}")
    assert streams == 1 and len(packets) == n
    dts = [d for _, d, _ in packets if d is not None]  # Matroska stores no dts
    assert all(b > a for a, b in zip(dts, dts[1:])), dts
    keyframe_times = {round(float(p * tb) * FPS) for p, _, key in packets if key}
    assert set(range(0, n, g)) <= keyframe_times


def test_constant_rate_chunks_continue_one_another_without_adjustment(tmp_path):
    """At a constant rate each chunk's dts are the previous chunk's continued one frame apart:
    x264's B-frame delay is the same in every chunk, so nothing had to be moved. (A last chunk
    shorter than the delay has no delay: its dts jump ahead to its pts, still in order.)"""
    write(tmp_path / "out.mp4", 24, chunks=2, chunk_frames=6)
    packets, _, tb = packets_of(tmp_path / "out.mp4")
    steps = {(b - a) * tb * FPS for (_, a, _), (_, b, _) in zip(packets, packets[1:])}
    assert steps == {1}, steps
    write(tmp_path / "tail.mp4", 26, chunks=2, chunk_frames=6)
    packets, _, tb = packets_of(tmp_path / "tail.mp4")
    assert [d * tb * FPS for _, d, _ in packets[-3:]] == [21, 24, 25]


def test_audio_is_kept_with_chunks(tmp_path):
    src = make_clip(tmp_path / "src.mp4")  # 64×48, 12 frames at 12 fps, a 440 Hz tone in AAC
    writer = VideoWriter(tmp_path / "out.mp4", 64, 48, 12, audio=AudioSource(src), chunks=2, chunk_frames=4)
    assert writer.chunked is not None
    for k in range(12):
        writer.write(np.full((48, 64, 3), 10 + 20 * k, np.uint8), k / 12)
    writer.close()
    codec, samples, rate = audio_of(tmp_path / "out.mp4")
    assert codec == "aac" and abs(len(samples) / rate - 1.0) < 0.1
    with av.open(str(tmp_path / "out.mp4")) as c:
        assert len(c.streams.video) == 1 and len(c.streams.audio) == 1
        assert sum(1 for _ in c.decode(video=0)) == 12


VARIABLE_RATES = {
    # a drift off the grid at frame 12 (in the middle of the third chunk)
    "drift": [k / FPS for k in range(12)] + [12 / FPS + 0.013 + (k - 12) * 1.7 / FPS for k in range(12, 30)],
    # a 6-frame gap after frame 10: the serial encoder's B-frame delay (measured on its first
    # frames) is then longer than the chunks', so its first dts would fall behind the last
    # chunk's and is moved up (still before its pts)
    "gap": [k / FPS for k in range(11)] + [(k + 6) / FPS for k in range(11, 30)],
}


@pytest.mark.parametrize("rate", sorted(VARIABLE_RATES))
def test_a_variable_rate_switches_to_the_serial_encoder_and_keeps_the_times(tmp_path, rate):
    n, times = 30, VARIABLE_RATES[rate]
    write(tmp_path / "out.mp4", n, times=times, chunks=2, chunk_frames=5)
    check_frames(tmp_path / "out.mp4", n, times)
    packets, _, _ = packets_of(tmp_path / "out.mp4")
    dts = [d for _, d, _ in packets]
    assert all(b > a for a, b in zip(dts, dts[1:])) and all(d <= p for p, d, _ in packets)


def textured(k: int) -> np.ndarray:
    """Frame k of a blocky grey random texture panning 3 px a frame (detail the encoder must spend
    bits on, unlike the flat frames, which it keeps almost losslessly)."""
    rng = np.random.default_rng(7)
    scene = rng.integers(16, 236, (H // 4 + 1, (W + 3 * 40) // 4 + 1)).astype(np.uint8)
    scene = np.kron(scene, np.ones((4, 4), np.uint8))  # grey: no chroma for yuv420p to lose
    return np.repeat(scene[:H, 3 * k:3 * k + W, None], 3, axis=2)


def test_chunked_quality_and_size_match_the_serial_encoder(tmp_path):
    """Same CRF, same quality (PSNR to the sources within 0.5 dB); the extra keyframes cost some
    bytes (here a keyframe every 8 frames instead of one: bounded loosely)."""
    n = 32
    scores, sizes = {}, {}
    for name, chunks in (("serial", 1), ("chunked", 2)):
        writer = VideoWriter(tmp_path / f"{name}.mp4", W, H, FPS, chunks=chunks, chunk_frames=8)
        for k in range(n):
            writer.write(textured(k))
        writer.close()
        frames = decoded(tmp_path / f"{name}.mp4")
        scores[name] = np.mean([psnr(rgb, textured(k)) for k, (_, rgb) in enumerate(frames)])
        sizes[name] = (tmp_path / f"{name}.mp4").stat().st_size
    assert abs(scores["chunked"] - scores["serial"]) < 0.5, scores
    assert sizes["chunked"] < 2.0 * sizes["serial"], sizes


def test_abort_stops_the_workers_and_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.setenv(chunked.ENV, "2")

    def frames():
        for k in range(20):
            if k == 17:
                raise KeyboardInterrupt
            yield source(k)

    with pytest.raises(KeyboardInterrupt):
        write_video(tmp_path / "out.mp4", frames(), fps=FPS)
    assert list(tmp_path.iterdir()) == []
    assert not [t for t in threading.enumerate() if t.name.startswith("cvtools-x264")]


def test_an_encoder_failure_in_a_worker_is_raised_as_it_was(tmp_path, monkeypatch):
    real = chunked.encoder_like

    class Failing:
        def __init__(self, encoder):
            self.extradata = encoder.extradata

        def encode(self, frame):
            raise ValueError("avcodec_send_frame() failed: Invalid argument")

    monkeypatch.setattr(chunked, "encoder_like", lambda *a: Failing(real(*a)))
    writer = VideoWriter(tmp_path / "out.mp4", W, H, FPS, chunks=2, chunk_frames=4)
    with pytest.raises(ValueError, match="avcodec_send_frame"):
        for k in range(12):
            writer.write(source(k))
        writer.close()
    writer.abort()
    assert not [t for t in threading.enumerate() if t.name.startswith("cvtools-x264")]


def test_serial_by_default_here_and_when_asked(tmp_path, monkeypatch):
    monkeypatch.delenv(chunked.ENV, raising=False)
    monkeypatch.setattr(chunked.os, "cpu_count", lambda: 2)
    assert VideoWriter(tmp_path / "a.mp4", W, H, FPS).chunked is None  # a 2-core machine
    monkeypatch.setattr(chunked.os, "cpu_count", lambda: 16)
    assert chunked.plan_chunks(None, 1920, 1080, Fraction(30)) == (1, 0)  # not measured on a big host yet
    monkeypatch.setattr(chunked, "AUTO_CHUNKS", True)
    assert chunked.plan_chunks(None, 1920, 1080, Fraction(30)) == (4, 60)  # the rule it would follow
    monkeypatch.setattr(chunked, "AUTO_CHUNKS", False)
    for value in ("0", "1"):
        monkeypatch.setenv(chunked.ENV, value)
        assert VideoWriter(tmp_path / "b.mp4", W, H, FPS).chunked is None
    monkeypatch.setenv(chunked.ENV, "3")
    assert VideoWriter(tmp_path / "c.mp4", W, H, FPS).chunked.chunks == 3
    assert VideoWriter(tmp_path / "d.webm", W, H, FPS, fmt="webm").chunked is None  # VP9: untouched
    monkeypatch.setenv(chunked.ENV, "many")
    with pytest.raises(UsageError, match="CVTOOLS_ENCODE_CHUNKS"):
        VideoWriter(tmp_path / "e.mp4", W, H, FPS)


def test_the_serial_encoder_writes_the_same_bytes_whatever_asks_for_it(tmp_path, monkeypatch):
    monkeypatch.setenv(chunked.ENV, "0")
    write(tmp_path / "env.mp4", 12)
    write(tmp_path / "one.mp4", 12, chunks=1)
    assert (tmp_path / "env.mp4").read_bytes() == (tmp_path / "one.mp4").read_bytes()


def test_frames_held_stay_within_the_memory_budget():
    fps = Fraction(30)
    for w, h in ((1920, 1080), (3840, 2160), (7680, 4320)):
        k, g = chunked.plan_chunks(8, w, h, fps)
        assert k >= 2 and g >= 1
        assert (k + 1) * g * w * h * 3 // 2 <= chunked.MAX_BUFFERED_BYTES
    assert chunked.plan_chunks(8, 1920, 1080, fps) == (8, 60)  # 1080p: all eight, 2 s chunks
    k, g = chunked.plan_chunks(8, 3840, 2160, fps)
    assert g >= 30 and k < 8  # 4K: chunks of a second at least, fewer of them


def test_encoders_that_disagree_on_the_stream_parameters_fall_back_to_serial(tmp_path, monkeypatch):
    real = chunked.encoder_like

    class Other:
        def __init__(self, encoder):
            self.extradata = encoder.extradata + b"\0"

    monkeypatch.setattr(chunked, "encoder_like", lambda *a: Other(real(*a)))
    notes = []
    writer = write(tmp_path / "out.mp4", 12, chunks=2, chunk_frames=4, on_note=notes.append)
    assert writer.chunked is None and any("encoding serially" in n for n in notes), notes
    check_frames(tmp_path / "out.mp4", 12)
