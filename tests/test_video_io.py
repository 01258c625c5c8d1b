"""Video input/output (cvtools/video/io.py, process.py) and `cvtools stylize clip.mp4`: tiny clips
made in code (64×48, 12 frames at 12 fps, a 440 Hz sine track), all on the CPU.

The frames carry their index in the blue channel (20·k), so order, range and timing are checked
through a lossy codec: H.264 at CRF 18 on flat colour keeps a channel mean within a few levels
(yuv420p rounding: ±1 per conversion, and the encoder's quantisation of a flat block is tiny); a
wrong frame is 20 levels away."""

from __future__ import annotations

import os
from pathlib import Path

import av  # a dependency: a missing PyAV fails here, it does not skip
import numpy as np
import pytest

from cvtools.errors import ImageError
from cvtools.video.io import probe_video, read_frames, write_video
from cvtools.video.process import stylize_video

W, H, N, FPS, RATE = 64, 48, 12, 12, 48000
#: blue levels of frame k are 20·k: a decoded frame is identified within ±10
STEP = 20


def frame_image(k: int, w: int = W, h: int = H) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.empty((h, w, 3), np.uint8)
    img[..., 0] = (xx * 255 // max(1, w - 1)).astype(np.uint8)  # smooth ramps: little for the codec to lose
    img[..., 1] = (yy * 255 // max(1, h - 1)).astype(np.uint8)
    img[..., 2] = 10 + STEP * k
    return img


def make_clip(path: Path, n: int = N, fps: int = FPS, audio: str | None = "aac", fmt: str | None = None,
              video_delay: int = 0) -> Path:
    """A clip made with PyAV directly (not through the code under test): n frames, and n/fps
    seconds of a 440 Hz sine (mono) in ``audio`` (None: no audio); the video may start
    ``video_delay`` frames after the audio."""
    c = av.open(str(path), "w", format=fmt)
    v = c.add_stream("libvpx-vp9" if path.suffix == ".webm" else "libx264", rate=fps)
    v.width, v.height, v.pix_fmt = W, H, "yuv420p"
    a = None
    if audio:
        a = c.add_stream(audio, rate=RATE)
        a.layout = "mono"
    for k in range(n):
        frame = av.VideoFrame.from_ndarray(frame_image(k), format="rgb24")
        frame.pts = k + video_delay
        for p in v.encode(frame):
            c.mux(p)
    for p in v.encode(None):
        c.mux(p)
    if a is not None:
        total = RATE * n // fps
        pcm = (0.5 * np.sin(2 * np.pi * 440 * np.arange(total) / RATE)).astype(np.float32)
        fs = a.codec_context.frame_size or 1024
        for k in range(0, total, fs):
            fr = av.AudioFrame.from_ndarray(pcm[None, k:k + fs], format="flt", layout="mono")
            fr.sample_rate, fr.pts = RATE, k
            for p in a.encode(fr):
                c.mux(p)
        for p in a.encode(None):
            c.mux(p)
    c.close()
    return path


def frame_index(rgb) -> int:
    return round((float(rgb[..., 2].mean()) - 10) / STEP)


def audio_of(path: Path):
    """(codec name, mono samples as float, sample rate) of a file's first audio stream."""
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return None, np.zeros(0), 0
        s = c.streams.audio[0]
        chunks = [f.to_ndarray().astype(np.float64).reshape(f.to_ndarray().shape[0], -1).mean(0)
                  if f.format.is_planar else f.to_ndarray().reshape(-1, len(f.layout.channels)).mean(1)
                  for f in c.decode(s)]
        return s.codec_context.name, np.concatenate(chunks), s.codec_context.sample_rate


def dominant_hz(samples, rate) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1.0 / rate)[spectrum.argmax()])


class Identity:
    """A stand-in stylizer (its ``__call__`` is what cvtools' generic path uses): returns the frame."""

    def __init__(self, fail_at=None, exc=KeyboardInterrupt):
        self.calls = 0
        self.fail_at, self.exc = fail_at, exc

    def __call__(self, x, **kwargs):
        self.calls += 1
        if self.fail_at is not None and self.calls >= self.fail_at:
            raise self.exc()
        return x


def leftovers(folder: Path):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".cvtools-"))


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("clips") / "clip.mp4")


# ----------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("src_ext,audio,dst_ext,expect_audio", [
    (".mp4", "aac", ".mp4", "aac"),  # copied
    (".mkv", "libopus", ".webm", "opus"),  # copied (webm takes Opus)
    (".webm", "libopus", ".mov", "aac"),  # mov does not take Opus: re-encoded
])
def test_round_trip_keeps_fps_frames_size_and_audio(tmp_path, src_ext, audio, dst_ext, expect_audio):
    src = make_clip(tmp_path / f"in{src_ext}", audio=audio)
    info = probe_video(src)
    assert (info.width, info.height, info.fps, info.has_audio) == (W, H, FPS, True)
    dst = tmp_path / f"out{dst_ext}"
    result = stylize_video(Identity(), src, dst)
    assert result.frames == N and dst.is_file() and leftovers(tmp_path) == []
    out = probe_video(dst)
    assert (out.width, out.height, out.fps) == (W, H, FPS)
    frames = list(read_frames(dst))
    assert [frame_index(f.rgb) for f in frames] == list(range(N))
    assert [round(f.time * FPS) for f in frames] == list(range(N))  # timestamps kept
    codec, samples, rate = audio_of(dst)
    assert codec == expect_audio
    # the whole second of sound is there: within one codec frame (AAC 1024, Opus 960 samples) plus
    # the encoder's priming (AAC 1024, Opus 312) of N/FPS = 1 s
    assert abs(len(samples) / rate - N / FPS) <= 2048 / rate, len(samples) / rate
    assert abs(dominant_hz(samples, rate) - 440) <= 2 * rate / len(samples)  # within two FFT bins


def test_audio_video_offset_is_kept(tmp_path):
    """Video starting half a second after the sound (a camera's pre-roll): it still does."""
    src = make_clip(tmp_path / "late.mp4", video_delay=6)
    dst = tmp_path / "late_out.mp4"
    stylize_video(Identity(), src, dst)
    with av.open(str(dst)) as c:
        starts = {s.type: float(s.start_time * s.time_base) for s in c.streams}
    assert starts == {"video": 0.5, "audio": 0.0}
    assert [round(f.time * FPS) for f in read_frames(dst)] == list(range(6, 6 + N))


def test_frame_range_and_size(tmp_path, clip):
    dst = tmp_path / "part.mp4"
    result = stylize_video(Identity(), clip, dst, start=0.25, duration=0.5, size=32)
    assert result.frames == 6
    frames = list(read_frames(dst))
    assert [frame_index(f.rgb) for f in frames] == [3, 4, 5, 6, 7, 8]  # frames at 0.25 s .. 0.67 s
    assert frames[0].rgb.shape == (24, 32, 3)  # longer side 32, proportions kept
    _, samples, rate = audio_of(dst)
    assert abs(len(samples) / rate - 0.5) <= 2048 / rate  # the audio of that half second only
    # read_frames alone, the same range
    assert [frame_index(f.rgb) for f in read_frames(clip, start=0.25, duration=0.5)] == [3, 4, 5, 6, 7, 8]
    with pytest.raises(ImageError, match="past the end"):
        list(read_frames(clip, start=5.0))


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_animated_gif_and_webp_inputs(tmp_path, fmt):
    from PIL import Image

    src = tmp_path / f"anim.{fmt.lower()}"
    frames = [Image.fromarray(frame_image(k, 65, 49)) for k in range(4)]  # odd sides, 10 fps
    kwargs = {"lossless": True} if fmt == "WEBP" else {}
    frames[0].save(src, fmt, save_all=True, append_images=frames[1:], duration=100, loop=0, **kwargs)
    info = probe_video(src)
    assert (info.kind, info.frames, info.fps, info.width, info.height) == ("animation", 4, 10, 65, 49)
    notes = []
    dst = tmp_path / "anim.mp4"
    assert stylize_video(Identity(), src, dst, on_note=notes.append).frames == 4
    assert any("cropped 1 px to 64x48" in n for n in notes), notes
    out = probe_video(dst)
    assert (out.width, out.height, out.fps) == (64, 48, 10)
    assert [frame_index(f.rgb) for f in read_frames(dst)] == [0, 1, 2, 3]
    # and back to an animation (no cropping there), with the frame durations
    gif = tmp_path / "back.gif"
    write_video(gif, [f.rgb for f in read_frames(src)], fps=info.fps)
    with Image.open(gif) as im:
        assert (im.n_frames, im.size, im.info["duration"]) == (4, (65, 49), 100)


def test_phone_rotation_is_applied(tmp_path):
    """A portrait phone clip is stored landscape with a display matrix saying "turn 90° clockwise"
    (mp4 tkhd matrix 0 1 / -1 0): frames come back upright, as players show them."""
    import struct

    data = bytearray(make_clip(tmp_path / "flat.mp4", n=3, audio=None).read_bytes())
    i = data.find(b"tkhd")
    assert data[i + 4] == 0  # version 0: 32-bit times
    matrix = i + 4 + 4 + 12 + 4 + 4 + 8 + 8  # after version/flags, times, track id, reserved, duration, ...
    assert struct.unpack(">9i", data[matrix:matrix + 36]) == (1 << 16, 0, 0, 0, 1 << 16, 0, 0, 0, 1 << 30)
    data[matrix:matrix + 36] = struct.pack(">9i", 0, 1 << 16, 0, -(1 << 16), 0, 0, 0, 0, 1 << 30)
    phone = tmp_path / "phone.mp4"
    phone.write_bytes(bytes(data))
    info = probe_video(phone)
    assert (info.rotation, info.display_size) == (90, (H, W))
    first = next(iter(read_frames(phone)))
    upright = np.rot90(frame_image(0), k=-1)  # turned clockwise
    assert first.rgb.shape == upright.shape
    assert np.abs(first.rgb.astype(int) - upright).mean() < 4  # the other way round is ~87 levels off
    out = tmp_path / "phone_out.mp4"
    stylize_video(Identity(), phone, out)
    assert (probe_video(out).width, probe_video(out).height) == (H, W)  # written upright


def test_a_stabilizer_says_which_protocol_it_follows(tmp_path, clip):
    """stylize_video picks the stabilizer's protocol from what it declares (wraps_effect), not
    from the methods it happens to have: reset once, then prepare + finish around the effect,
    or step after it, once per frame."""
    from cvtools.video.stability import Stabilizer, TemporalStabilizer

    class Recording(Stabilizer):
        def __init__(self, wraps):
            self.wraps_effect, self.calls = wraps, []

        def reset(self):
            self.calls.append("reset")

        def step(self, frame_in, output):
            self.calls.append("step")
            return output

        def prepare(self, frame_in, measured=None):
            self.calls.append("prepare")
            return frame_in

        def finish(self, output):
            self.calls.append("finish")
            return output

    after, around = Recording(False), Recording(True)
    assert stylize_video(Identity(), clip, tmp_path / "after.mp4", stable=after).frames == N
    assert after.calls == ["reset"] + ["step"] * N
    assert stylize_video(Identity(), clip, tmp_path / "around.mp4", stable=around).frames == N
    assert around.calls[0] == "reset" and sorted(around.calls[1:]) == ["finish"] * N + ["prepare"] * N
    assert TemporalStabilizer.wraps_effect and TemporalStabilizer.measures_ahead


class PassThroughNet:
    """A stand-in for Stylizer's whole-frame path (``stylize_tensor``): the network returns its input."""

    device = None

    def __init__(self):
        import torch

        self.device = torch.device("cpu")

    def stylize_tensor(self, x):
        return x

    def tile_side(self, tile, h, w):
        return None


def test_yuv_planes_path_matches_ffmpeg_conversions(tmp_path, clip):
    """The GPU path moves yuv420p planes and converts on the device: RGB→YUV agrees with FFmpeg's
    swscale to the rounding of one level (same BT.601 formula in float, rounded once each). YUV→RGB:
    swscale truncates where this rounds (up to 1 level, 0.5 on average: Y=64 gives 55 there, 55.9
    here) and sites chroma its own way (half a chroma sample = one pixel of a ramp climbing at most
    255/47 ≈ 5.4 levels per pixel), so at most 1 + 5.4 + rounding ≈ 7 levels apart, ~2 on average."""
    import torch

    from cvtools.video.io import yuv_matrix
    from cvtools.video.process import planes_to_rgb, rgb_to_planes

    info = probe_video(clip)
    assert yuv_matrix(info) == ("bt601", False)  # 48 rows, unspecified: BT.601 like players
    rgb = np.stack([f.rgb for f in read_frames(clip)])
    planes = np.stack([f.rgb for f in read_frames(clip, planes=True)])
    assert planes.shape == (N, H * 3 // 2, W)
    mine = planes_to_rgb(torch.from_numpy(planes), H, W, "bt601") * 255
    diff = (mine - torch.from_numpy(rgb).permute(0, 3, 1, 2).float()).abs()
    assert float(diff.mean()) < 2.5 and float(diff.max()) <= 8, (float(diff.mean()), float(diff.max()))
    ref = av.VideoFrame.from_ndarray(rgb[0], format="rgb24").reformat(format="yuv420p", dst_colorspace="ITU601")
    back = rgb_to_planes(torch.from_numpy(rgb[:1]).permute(0, 3, 1, 2).float() / 255, "bt601")[0].numpy()
    assert np.abs(back.astype(int) - ref.to_ndarray().astype(int)).max() <= 1
    # end to end through the planes path: every frame, in order, with the audio
    dst = tmp_path / "planes.mp4"
    assert stylize_video(PassThroughNet(), clip, dst, yuv=True).frames == N
    assert [frame_index(f.rgb) for f in read_frames(dst)] == list(range(N))
    assert probe_video(dst).has_audio


# ----------------------------------------------------------------------------- bad inputs


def bad_files(folder: Path, clip: Path) -> dict:
    data = clip.read_bytes()
    cases = {
        "truncated.mp4": data[: len(data) // 2],  # moov (the index) at the end is cut off
        "text.mp4": b"hello, this is not a video\n" * 20,
        "empty.mp4": b"",
        "playlist.mp4": b"#EXTM3U\n#EXTINF:1,\nfile:///etc/passwd\n",  # FFmpeg would follow it; never opened
        "png.mp4": bytes.fromhex("89504e470d0a1a0a") + b"\0" * 64,
    }
    paths = {}
    for name, payload in cases.items():
        (folder / name).write_bytes(payload)
        paths[name] = folder / name
    # sound only (an .m4a renamed): a real mp4 without a video stream
    sound = folder / "sound.mp4"
    c = av.open(str(sound), "w")
    a = c.add_stream("aac", rate=RATE)
    a.layout = "mono"
    for k in range(0, RATE // 4, 1024):
        fr = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="flt", layout="mono")
        fr.sample_rate, fr.pts = RATE, k
        for p in a.encode(fr):
            c.mux(p)
    for p in a.encode(None):
        c.mux(p)
    c.close()
    paths["sound.mp4"] = sound
    return paths


REASONS = {
    "truncated.mp4": r"cannot read video|damaged|truncated",
    "text.mp4": r"not a recognised video file",
    "empty.mp4": r"empty file",
    "playlist.mp4": r"not a recognised video file",
    "png.mp4": r"a PNG file, not a video",
    "sound.mp4": r"has no video stream",
}


def test_bad_videos_one_line_errors_and_no_output(tmp_path, clip):
    import re

    for name, path in bad_files(tmp_path, clip).items():
        dst = tmp_path / f"{path.stem}_out.mp4"
        with pytest.raises(ImageError) as err:
            stylize_video(Identity(), path, dst)
        message = str(err.value)
        assert "\n" not in message and message.startswith(str(path)), message
        assert re.search(REASONS[name], message), message
        assert not dst.exists()
    assert leftovers(tmp_path) == []


def test_truncated_after_a_good_index_is_refused(tmp_path):
    """A file whose index (moov, written first) is whole but whose frames are cut off: the
    missing frames are noticed, nothing is written."""
    src = tmp_path / "fast.mp4"
    write_video(src, [frame_image(k % N) for k in range(48)], fps=FPS)  # cvtools writes the index first
    data = src.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ImageError, match=r"truncated or damaged|cannot decode") as err:
        stylize_video(Identity(), cut, tmp_path / "cut_out.mp4")
    assert str(err.value).startswith(str(cut))
    assert not (tmp_path / "cut_out.mp4").exists() and leftovers(tmp_path) == []


def test_pixel_limit_before_decoding(tmp_path, clip, monkeypatch):
    monkeypatch.setenv("CVTOOLS_MAX_PIXELS", "3000")  # 64×48 = 3072
    with pytest.raises(ImageError, match="safety limit"):
        probe_video(clip)


@pytest.mark.parametrize("exc", [KeyboardInterrupt, RuntimeError])
def test_interrupt_or_error_mid_video_leaves_no_file(tmp_path, clip, exc):
    dst = tmp_path / "stopped.mp4"
    stub = Identity(fail_at=4, exc=exc)
    with pytest.raises(exc):
        stylize_video(stub, clip, dst)
    # stopped there: the overlapped stages may have started the next frame, not the whole clip
    assert 4 <= stub.calls <= 5
    assert not dst.exists() and leftovers(tmp_path) == []


# ----------------------------------------------------------------------------- dream video


class DreamStub:
    """A stand-in dream engine: records where each frame's dream starts; its "dream" darkens."""

    def __init__(self):
        self.starts = []

    def __call__(self, x, seed=0, progress=None):
        self.starts.append(x.clone())
        return x * 0.5


def test_dream_video_starts_each_frame_from_the_warped_previous_dream(tmp_path, clip):
    import torch

    from cvtools.video import stability
    from cvtools.video.process import dream_video

    frames = [torch.from_numpy(f.rgb).permute(2, 0, 1).float() / 255 for f in read_frames(clip, duration=0.25)]
    warped, plain = DreamStub(), DreamStub()
    assert dream_video(warped, clip, tmp_path / "w.mp4", duration=0.25).frames == 3
    assert dream_video(plain, clip, tmp_path / "p.mp4", duration=0.25, warp=False).frames == 3
    # frame-by-frame: every dream starts from its own frame
    for start, frame in zip(plain.starts, frames):
        assert torch.equal(start, frame)
    # warped: the first from its frame, then each from DeepDreamVideo's start (the same arithmetic)
    assert torch.equal(warped.starts[0], frames[0])
    for k in (1, 2):
        expect = stability.dream_start(frames[k - 1], frames[k], warped.starts[k - 1] * 0.5)  # previous dream
        assert torch.allclose(warped.starts[k], expect, atol=1e-6)
        assert (warped.starts[k] - frames[k]).abs().mean() > 0.05  # and it is not the plain frame


# ----------------------------------------------------------------------------- the command


@pytest.mark.slow
def test_cli_stylize_video_writes_playable_file_and_skips_on_rerun(tmp_path, run_cli):
    folder = tmp_path / "in"
    folder.mkdir()
    src = make_clip(folder / "clip.mp4", n=6)
    from PIL import Image

    Image.fromarray(frame_image(0)).save(folder / "photo.png")
    result = run_cli("stylize", folder, "--style", "mona", "--device", "cpu")
    assert result.exit_code == 0, result.output + result.stderr
    out = folder / "clip_mona.mp4"
    info = probe_video(out)
    assert (info.width, info.height, info.fps, info.has_audio) == (W, H, FPS, True)
    assert len(list(read_frames(out))) == 6
    assert (folder / "photo_mona.png").is_file()  # the photo beside it, as before
    assert sorted(p.name for p in folder.iterdir()) == ["clip.mp4", "clip_mona.mp4", "photo.png", "photo_mona.png"]
    mtime = os.stat(out).st_mtime_ns
    again = run_cli("stylize", src, "--style", "mona", "--device", "cpu")
    assert again.exit_code == 0 and "already done" in again.stderr, again.stderr
    assert os.stat(out).st_mtime_ns == mtime
    # another range is another result: kept apart, with a note saying why
    part = run_cli("stylize", src, "--style", "mona", "--device", "cpu", "--duration", "0.25")
    assert part.exit_code == 0, part.stderr
    assert "--duration" in part.stderr and "clip_mona-2.mp4" in part.stderr, part.stderr
    assert len(list(read_frames(folder / "clip_mona-2.mp4"))) == 3
    assert os.stat(out).st_mtime_ns == mtime
    # a bad video among good inputs: one line naming it, the rest done, exit 1
    (folder / "broken.mp4").write_bytes(b"not a video at all")
    mixed = run_cli("stylize", folder / "broken.mp4", src, "--style", "mona", "--device", "cpu", "-o", tmp_path / "o/")
    assert mixed.exit_code == 1
    errors = [line for line in mixed.stderr.splitlines() if "error" in line]
    assert errors == [f"cvtools: error: {folder / 'broken.mp4'}: not a recognised video file (cvtools reads mp4, mov, "
                      "mkv, webm, avi and animated GIF/WebP)"], mixed.stderr
    assert (tmp_path / "o" / "clip_mona.mp4").is_file()


@pytest.mark.slow
def test_cli_dream_video(tmp_path, run_cli):
    src = make_clip(tmp_path / "clip.mp4")
    result = run_cli("dream", src, "--weights", "random", "--octaves", "1", "--steps", "1", "--device", "cpu",
                     "--duration", "0.25")
    assert result.exit_code == 0, result.stderr
    info = probe_video(tmp_path / "clip_dream.mp4")
    assert (info.width, info.height, info.fps, info.has_audio) == (W, H, FPS, True)
    assert len(list(read_frames(tmp_path / "clip_dream.mp4"))) == 3


@pytest.mark.parametrize("device, env, expected", [
    ("cuda", None, "superfast"),  # GPU_X264_PRESET: the GPU pipeline is encode-bound
    ("cpu", None, "veryfast"),  # the network is the bottleneck: the writer's default stays
    (None, None, "veryfast"),  # a stylizer without a device (the generic path)
    ("cuda", "medium", "medium"),  # the variable wins on every device
    ("cpu", "medium", "medium"),
])
def test_x264_preset_follows_the_stylizers_device_into_the_encoder(tmp_path, clip, monkeypatch, device, env,
                                                                     expected):
    """The preset stylize_video picks for a CUDA-like or CPU stylizer is the one the libx264
    stream is opened with (the GPU pipeline is encode-bound at veryfast: H100, 1080p, 47
    frames/s end to end, 72 at superfast)."""
    import types

    import cvtools.video.io as vio
    from cvtools.video.process import GPU_X264_PRESET

    assert GPU_X264_PRESET == "superfast"
    if env is None:
        monkeypatch.delenv("CVTOOLS_X264_PRESET", raising=False)
    else:
        monkeypatch.setenv("CVTOOLS_X264_PRESET", env)
    opened = []

    class SpyWriter(vio.VideoWriter):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            opened.append(dict(self.stream.options))

    monkeypatch.setattr(vio, "VideoWriter", SpyWriter)
    stylizer = Identity()
    if device is not None:  # a CUDA-like stand-in: only its device type is looked at
        stylizer.device = types.SimpleNamespace(type=device)
    dst = tmp_path / "out.mp4"
    stylize_video(stylizer, clip, dst, batch_size=1, tune=False, duration=0.25)
    assert [o["preset"] for o in opened] == [expected] and opened[0]["crf"] == "18"
    assert stylizer.calls >= 1 and probe_video(dst).width == W


def test_batch_summary_counts_videos_not_images():
    # a video is hundreds of frames: the folder summary names videos and gives no img/s for them
    from cvtools.batch import BatchReport

    mixed = BatchReport(done=["clip.mp4", "a.jpg", "b.png"], started=0.0, ended=40.0)
    assert mixed.rate_line() == "1 video and 2 images in 40.0 s"
    assert BatchReport(done=["x.mov", "y.MKV"], started=0.0, ended=9.0).rate_line(2) == "2 videos in 9.0 s (on 2 processes)"
    assert BatchReport(done=["a.jpg"] * 2, started=0.0, ended=50.0).rate_line() == "2 images in 50.0 s (25.0 s/img)"


@pytest.mark.parametrize("transfer, kind", [(16, "PQ"), (18, "HLG"), (1, None)])
def test_hdr_sources_get_a_note(tmp_path, transfer, kind):
    """A clip tagged with an HDR transfer (PQ or HLG, as phones and cameras write them) is
    processed as 8-bit SDR with no tone mapping; the user is told so, once, naming the file.
    A BT.709 (SDR) clip gets no such note."""
    src = tmp_path / "clip.mp4"
    with av.open(str(src), "w") as c:
        s = c.add_stream("libx264", rate=12)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.codec_context.color_trc = transfer
        for k in range(3):
            for p in s.encode(av.VideoFrame.from_ndarray(frame_image(k, 64, 48), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    info = probe_video(src)
    assert info.color_trc == transfer
    notes = []
    assert stylize_video(Identity(), src, tmp_path / "out.mp4", on_note=notes.append).frames == 3
    hdr = [n for n in notes if "HDR" in n]
    if kind is None:
        assert not hdr, notes
    else:
        assert len(hdr) == 1 and hdr[0].startswith("clip.mp4: ") and f"({kind})" in hdr[0], notes


def clip_with_subtitles(tmp_path: Path) -> Path:
    """An mkv made with PyAV directly: the clip of :func:`make_clip` (video + AAC) and a SubRip
    track of three cues (0.10 s "one", 0.40 s "two", 0.70 s "three"), muxed from an .srt file."""
    srt = tmp_path / "cues.srt"
    srt.write_text("1\n00:00:00,100 --> 00:00:00,300\none\n\n2\n00:00:00,400 --> 00:00:00,600\ntwo\n\n"
                   "3\n00:00:00,700 --> 00:00:00,900\nthree\n\n")
    plain = make_clip(tmp_path / "plain.mkv", fmt="matroska")
    dst = tmp_path / "subs.mkv"
    with av.open(str(plain)) as a, av.open(str(srt)) as s, av.open(str(dst), "w", format="matroska") as out:
        streams = {st.index: out.add_stream_from_template(st) for st in a.streams}
        cues = out.add_stream_from_template(s.streams[0])
        for p in a.demux():
            if p.size:
                p.stream = streams[p.stream.index]
                out.mux(p)
        for p in s.demux():
            if p.size:
                p.stream = cues
                out.mux(p)
    return dst


def cues_of(path: Path):
    """[(start seconds, text)] of a file's first subtitle track."""
    with av.open(str(path)) as c:
        st = c.streams.subtitles[0]
        return [(round(float(p.pts * p.time_base), 3), bytes(p).decode().strip())
                for p in c.demux(st) if p.size]


def test_subtitles_are_copied_where_the_container_takes_them(tmp_path):
    """An mkv's SubRip track comes through into an mkv output unchanged, and a range keeps the
    cues that start inside it, shifted to the output's time; an mp4 output cannot hold SubRip
    as it is: no track, and a note that names the file and says how to keep them."""
    src = clip_with_subtitles(tmp_path)
    info = probe_video(src)
    assert len(info.subtitles) == 1 and info.has_audio
    assert cues_of(src) == [(0.1, "one"), (0.4, "two"), (0.7, "three")]

    result = stylize_video(Identity(), src, tmp_path / "out.mkv")
    assert cues_of(tmp_path / "out.mkv") == [(0.1, "one"), (0.4, "two"), (0.7, "three")]
    assert "1 subtitle track copied" in result.audio and "audio" in result.audio
    assert [frame_index(f.rgb) for f in read_frames(tmp_path / "out.mkv")] == list(range(N))

    stylize_video(Identity(), src, tmp_path / "part.mkv", start=0.25, duration=0.4)
    assert cues_of(tmp_path / "part.mkv") == [(0.15, "two")]  # "one" began before, "three" after

    notes = []
    stylize_video(Identity(), src, tmp_path / "out.mp4", on_note=notes.append)
    with av.open(str(tmp_path / "out.mp4")) as c:
        assert not c.streams.subtitles and c.streams.audio
    assert any(n.startswith("subs.mkv: subtitles (") and "not copied" in n and ".mkv keeps them" in n
               for n in notes), notes


def test_an_animation_output_names_the_sound_and_subtitles_it_drops(tmp_path):
    """A GIF holds neither sound nor subtitles: the command's note names both (it named the sound
    alone), and write_video() given ``audio_from`` for a GIF says so too (it dropped the sound
    without a word): to ``on_note``, else as a Python warning; a silent source gets no note."""
    src = clip_with_subtitles(tmp_path)
    notes = []
    stylize_video(Identity(), src, tmp_path / "out.gif", on_note=notes.append)
    expected = "subs.mkv: sound and subtitles dropped: GIF has no audio or subtitle track; -o NAME.mkv keeps them"
    assert expected in notes, notes

    frames = [np.full((16, 16, 3), 40 * k, np.uint8) for k in range(3)]
    notes = []
    write_video(tmp_path / "api.gif", frames, fps=12, audio_from=src, on_note=notes.append)
    assert notes == [expected], notes
    with pytest.warns(UserWarning, match="subs.mkv: sound and subtitles dropped: animated WebP"):
        write_video(tmp_path / "api.webp", frames, fps=12, audio_from=(src, 0.2, 0.5))
    assert len(list(read_frames(tmp_path / "api.webp"))) == 3
    silent = make_clip(tmp_path / "silent.mp4", audio=None)
    assert not probe_video(silent).has_audio
    notes = []
    write_video(tmp_path / "quiet.gif", frames, fps=12, audio_from=silent, on_note=notes.append)
    assert notes == [], notes


def test_a_subtitle_cue_the_muxer_refuses_stops_the_subtitles_not_the_video(tmp_path):
    """Untrusted input: if the muxer refuses a cue of a damaged track, the subtitles stop there
    with a note naming the file, and the video (and its audio) is still written."""
    from cvtools.video.io import AudioSource, VideoWriter

    src = clip_with_subtitles(tmp_path)
    notes = []
    w = VideoWriter(tmp_path / "out.mkv", W, H, FPS, fmt="matroska", audio=AudioSource(src), on_note=notes.append)

    class RefusesCues:  # the container, except that subtitle packets are refused
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def mux(self, packet):
            if packet.stream.type == "subtitle":
                raise ValueError("invalid packet")
            return self.inner.mux(packet)

    w.container = RefusesCues(w.container)
    for k in range(N):
        w.write(frame_image(k), k / FPS)
    w.close()
    assert [frame_index(f.rgb) for f in read_frames(tmp_path / "out.mkv")] == list(range(N))
    assert audio_of(tmp_path / "out.mkv")[0] == "aac"
    assert any(n.startswith("subs.mkv: subtitles stopped at 0.1 s") for n in notes), notes


# ----------------------------------------------------------------------------- animations' own timing

#: frame durations (ms) of the animations below: varying, and the last one longest
VARYING_MS = [50, 100, 200, 50, 300, 100, 100, 500]


def make_animation(path: Path, durations=VARYING_MS, frames=None) -> Path:
    """An animated GIF/WebP made with Pillow directly, frame k showing frame_image(k)."""
    from PIL import Image

    frames = frames or [Image.fromarray(frame_image(k)) for k in range(len(durations))]
    kwargs = {"lossless": True, "exact": True} if path.suffix == ".webp" else {}
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=list(durations), loop=0, **kwargs)
    return path


def animation_durations(path: Path):
    """Each frame's duration (ms) as Pillow reads it (loading each frame: WebP says so only then)."""
    from PIL import Image

    out = []
    with Image.open(path) as im:
        for k in range(im.n_frames):
            im.seek(k)
            im.load()
            out.append(im.info["duration"])
    return out


def track_seconds(path: Path) -> float:
    """How long the video stream of ``path`` lasts, as its container says (webm: only the whole file's)."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return float(s.duration * s.time_base) if s.duration else c.duration / 1_000_000


@pytest.mark.parametrize("src_ext", [".webp", ".gif"])
@pytest.mark.parametrize("dst_ext,tick", [(".webp", None), (".gif", None), (".mp4", 1 / 90000), (".webm", 1 / 1000)])
def test_animation_frames_keep_their_own_durations(tmp_path, src_ext, dst_ext, tick):
    """Each frame of a GIF/WebP keeps its duration, the last one's included: in GIF/WebP outputs
    as it was, in videos as frame times and a length equal to their sum (WebP's durations were
    read before their frames were loaded, so every one was 100 ms; the last frame got the median)."""
    src = make_animation(tmp_path / f"anim{src_ext}")
    assert [round(d * 1000) for d in probe_video(src).durations] == VARYING_MS
    dst = tmp_path / f"out{dst_ext}"
    assert stylize_video(Identity(), src, dst).frames == len(VARYING_MS)
    if tick is None:
        assert animation_durations(dst) == VARYING_MS
        return
    assert abs(track_seconds(dst) - sum(VARYING_MS) / 1000) <= tick + 1e-9
    starts = np.cumsum([0] + VARYING_MS[:-1]) / 1000
    assert [round(f.time, 3) for f in read_frames(dst)] == list(starts)
    assert [frame_index(f.rgb) for f in read_frames(dst)] == list(range(len(VARYING_MS)))


@pytest.mark.parametrize("dst_ext", [".gif", ".mp4"])
def test_a_cut_animation_ends_its_last_frame_at_the_cut(tmp_path, dst_ext):
    """0.5 s to 0.75 s of the frames shown 0.4-0.7 s and 0.7-0.8 s: 200 ms of the first and 50 ms
    of the second (the last frame had the median 100 ms)."""
    src = make_animation(tmp_path / "anim.gif")
    frames = list(read_frames(src, start=0.5, duration=0.25))
    assert [(frame_index(f.rgb), round(f.time, 6), round(f.time.end, 6)) for f in frames] == [(4, 0, 0.2),
                                                                                            (5, 0.2, 0.25)]
    dst = tmp_path / f"cut{dst_ext}"
    stylize_video(Identity(), src, dst, start=0.5, duration=0.25)
    if dst_ext == ".gif":
        assert animation_durations(dst) == [200, 50]
    else:
        assert abs(track_seconds(dst) - 0.25) <= 1 / 90000 + 1e-9


@pytest.mark.parametrize("chunks", [0, 2])
def test_a_long_last_frame_lasts_in_mp4_serial_or_chunked(tmp_path, chunks):
    """A steady 10 fps GIF whose last frame stays 1 s: the mp4 lasts 3.9 s, not 3.0, whether one
    encoder or chunk encoders made it (mp4 ends a track at the last packet in decode order)."""
    from PIL import Image

    from cvtools.video.io import VideoWriter

    src = make_animation(tmp_path / "steady.gif", [100] * 29 + [1000],
                         [Image.fromarray(frame_image(k % 12)) for k in range(30)])
    info = probe_video(src)
    writer = VideoWriter(tmp_path / "out.mp4", W, H, info.fps, chunks=chunks, chunk_frames=8)
    for f in read_frames(src, info=info):
        writer.write(f.rgb, f.time)
    assert (writer.chunked is not None) == bool(chunks)
    writer.close()
    assert abs(track_seconds(tmp_path / "out.mp4") - 3.9) <= 1 / 90000 + 1e-9
    assert len(list(read_frames(tmp_path / "out.mp4"))) == 30


@pytest.mark.parametrize("ext", [".webp", ".gif"])
def test_transparent_animation_frames_are_laid_on_white(tmp_path, ext):
    """Transparent areas become white, not the colour hidden under them (red here; WebP gave black)."""
    from PIL import Image

    frames = []
    for k in range(3):
        rgba = np.zeros((H, W, 4), np.uint8)
        rgba[..., 0], rgba[..., 1] = 200, 40 * k
        rgba[:, : W // 2, 3] = 255  # the left half opaque, the right half transparent
        frames.append(Image.fromarray(rgba, "RGBA"))
    src = make_animation(tmp_path / f"alpha{ext}", [100, 200, 300], frames)
    got = list(read_frames(src))
    assert [f.rgb[H // 2, W // 4].tolist() for f in got] == [[200, 40 * k, 0] for k in range(3)]
    assert all(f.rgb[H // 2, 3 * W // 4].tolist() == [255, 255, 255] for f in got)
    # the opacity travels with the frame, and GIF/WebP outputs keep it (video has no alpha: white there)
    assert all(f.alpha is not None and f.alpha[H // 2, W // 4] == 255 and f.alpha[H // 2, 3 * W // 4] == 0
               for f in got)
    for out_ext in (".webp", ".gif"):
        out = tmp_path / f"out{ext}{out_ext}"
        stylize_video(_Identity(), src, out)
        with Image.open(out) as im:
            for k in range(im.n_frames):
                im.seek(k)
                alpha = im.convert("RGBA").getchannel("A")
                assert alpha.getpixel((W // 4, H // 2)) == 255 and alpha.getpixel((3 * W // 4, H // 2)) == 0, (out, k)


def _photo_like(k, h, w):
    """A frame with gradients and grain, as a photo's: lossy WebP is far smaller than lossless."""
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([128 + 80 * np.sin(xx / 7 + k), 128 + 80 * np.cos(yy / 5 - k), 128 + 60 * np.sin((xx + yy) / 11)], -1)
    return np.clip(base + np.random.default_rng(k).normal(0, 18, (h, w, 3)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("opacity", ["right_half", "moving", "first_only"])
def test_transparent_webp_animation_is_lossy_and_keeps_its_alpha(tmp_path, opacity):
    """Pillow 13's lossy animated WebP crops transparent edges away and then reads back opaque
    (cvtools.io.webp): the writer keeps every frame's alpha, and its file stays lossy, a third of
    lossless or less, where a frame after the first is transparent (first_only: lossless)."""
    from PIL import Image

    from cvtools.io.webp import has_alpha_flag
    from cvtools.video.io import AnimationWriter

    h, w = 96, 128

    def alpha_of(k):
        a = np.full((h, w), 255, np.uint8)
        if opacity == "right_half" or (opacity == "first_only" and k == 0):
            a[:, w // 2:] = 0
        elif opacity == "moving":
            a[:, w // 2 + 10 * k:] = 0
        return a

    sizes = {}
    for name, extra in (("out", {}), ("lossless", {"lossless": True, "quality": 80})):
        writer = AnimationWriter(tmp_path / f"{name}.webp", w, h, 10, "WEBP", extra)
        for k in range(4):
            writer.write(_photo_like(k, h, w), k / 10, alpha=alpha_of(k))
        writer.close()
        sizes[name] = (tmp_path / f"{name}.webp").stat().st_size
    assert has_alpha_flag(tmp_path / "out.webp")
    with Image.open(tmp_path / "out.webp") as im:
        assert im.n_frames == 4 and im.mode == "RGBA"
        for k in range(4):
            im.seek(k)
            got = np.asarray(im.convert("RGBA").getchannel("A"), dtype=int)
            assert np.abs(got - alpha_of(k)).max() <= 40, (opacity, k)
    if opacity != "first_only":
        assert sizes["out"] * 3 < sizes["lossless"], sizes


@pytest.mark.parametrize("durations", [[500, 30, 100, 30, 150, 150, 150], [500, 100, 30, 100, 30, 1000],
                                       [100, 50, 100, 30, 100, 200, 50, 500, 100, 20, 50, 20, 100]])
@pytest.mark.parametrize("start", [0, 0.13])
def test_mp4_lasts_as_long_as_the_frames_whatever_x264_reorders(tmp_path, durations, start):
    """mp4 takes the shorter of the frames' span and the decode times' span: both must reach the
    last frame's end, however the B-frames fell (these durations once came out 0.05-0.47 s short)."""
    from PIL import Image

    frames = [Image.fromarray(frame_image(k % 12)) for k in range(len(durations))]
    src = make_animation(tmp_path / "anim.gif", durations, frames)
    dst = tmp_path / "out.mp4"
    stylize_video(Identity(), src, dst, start=start)
    assert abs(track_seconds(dst) - (sum(durations) / 1000 - start)) <= 1 / 90000 + 1e-9
    with av.open(str(dst)) as c:
        assert abs(c.duration / 1_000_000 - (sum(durations) / 1000 - start)) <= 1e-5


def test_a_start_within_the_last_frame_gives_that_frame(tmp_path):
    """--start later than half a frame after the last frame began, but before the clip ends: that
    frame is still on screen, so it is the range's one frame (it was 'no frames in the range')."""
    src = make_clip(tmp_path / "c.mp4", audio=None)
    last_start = (N - 1) / FPS
    for start in (last_start + 0.6 / FPS, last_start + 0.95 / FPS):
        frames = list(read_frames(src, start=start))
        assert len(frames) == 1 and frames[0].time == 0.0
        assert abs(int(frames[0].rgb[..., 2].mean()) - (10 + STEP * (N - 1))) <= 3  # the last frame's blue


class _Identity:
    """A stylizer that gives the frame back: what a video run does around the network."""

    name = "identity"
    last_tiles = 0

    def __call__(self, image, strength=1.0, preserve_color=False, tile=None, progress=None, as_uint8=False):
        return image



def test_write_video_takes_read_frames_as_they_come(tmp_path):
    """The README's round trip: read_frames' Frames go to write_video as they are (each at its
    own time), not only their .rgb arrays."""
    src = make_clip(tmp_path / "c.mp4", audio=None)
    out = write_video(tmp_path / "copy.mp4", read_frames(src), fps=FPS)
    got = list(read_frames(out))
    assert len(got) == N and got[0].rgb.shape == (H, W, 3)
    assert abs(got[-1].time - (N - 1) / FPS) < 1e-3
