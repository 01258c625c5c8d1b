"""Video inputs that used to break cvtools (issue #26): a PyAV without ``metadata_errors``
(PyAV 19), variable frame rate clips, absurd ``start``/``duration``. Tiny clips made in code
with PyAV directly (see tests/test_video_io.py), all on the CPU."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from test_video_io import RATE, DreamStub, H, Identity, N, W, audio_of, frame_image, frame_index, make_clip

from cvtools.cli.video_options import parse_seconds
from cvtools.io import container as av_container
from cvtools.io.container import read_video_comment
from cvtools.video.io import probe_video, read_frames
from cvtools.video.process import stylize_video


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("clips") / "clip.mp4")


# ----------------------------------------------------------------------------- PyAV 19


@pytest.fixture
def fresh_av_keywords():
    """``_lenient_tags`` decides once per process: decide again with the av a test sets up, and
    again after it (for the real one)."""
    decide = av_container._lenient_tags
    decide.cache_clear()
    yield
    decide.cache_clear()


def pyav19_open(real_open, calls):
    """``av.open`` as PyAV 19 has it: no ``metadata_encoding``/``metadata_errors`` (passing one
    is the TypeError every video input failed with); otherwise the installed av's."""

    def open(file, mode=None, format=None, options=None, container_options=None, buffer_size=32768,
             timeout=None, io_open=None, hwaccel=None):
        calls.append(mode or "r")
        return real_open(file, mode, format=format, options=options, container_options=container_options,
                         buffer_size=buffer_size, timeout=timeout, io_open=io_open, hwaccel=hwaccel)

    return open


class _CompiledOpen:
    """An ``av.open`` that, like PyAV's compiled wheels, has no signature to inspect."""

    __signature__ = "compiled"  # inspect.signature raises TypeError on it

    def __init__(self, inner):
        self.inner = inner

    def __call__(self, *args, **kwargs):
        return self.inner(*args, **kwargs)


@pytest.mark.parametrize("compiled", [False, True], ids=["signature", "version"])
def test_a_pyav_without_metadata_errors_reads_and_writes_videos(tmp_path, clip, monkeypatch, fresh_av_keywords,
                                                               compiled):
    """PyAV 19 removed ``av.open``'s ``metadata_errors``: every reader of a video (probe, frames,
    the audio and subtitles copied, the marker) must leave it out there, whether the installed
    av's ``open`` shows its signature or only its version says so."""
    calls = []
    fake = pyav19_open(av.open, calls)
    monkeypatch.setattr(av, "open", _CompiledOpen(fake) if compiled else fake)
    monkeypatch.setattr(av, "__version__", "19.0.2")
    info = probe_video(clip)
    assert (info.frames, info.has_audio) == (N, True)
    assert [frame_index(f.rgb) for f in read_frames(clip, info=info)] == list(range(N))
    dst = tmp_path / "out.mp4"
    result = stylize_video(Identity(), clip, dst, info=info)
    assert result.frames == N and result.audio == "audio copied (aac)"  # the audio source opened too
    assert read_video_comment(dst) is None  # read, and no marker outside a run
    assert calls.count("r") >= 4 and "w" in calls


def test_the_installed_pyav_takes_the_keywords_passed(clip, fresh_av_keywords):
    """On the PyAV installed here the lenient-tag keyword is passed exactly when it has one
    (PyAV ≤ 18), and then it is accepted."""
    major = int(av.__version__.split(".")[0])
    assert av_container._lenient_tags() == ({"metadata_errors": "ignore"} if major < 19 else {})
    with av_container.open_input(clip, "mov") as container:
        assert container.streams.video


def test_tags_that_are_not_utf8_neither_stop_a_video_nor_leak_surrogates(tmp_path, monkeypatch, fresh_av_keywords):
    """A comment with a byte that is not UTF-8: PyAV 19 decodes it with surrogateescape (a lone
    surrogate, which cannot be printed or encoded), PyAV 18 as told; either way the file reads
    and the comment comes back as plain text without the bad byte."""
    src = make_clip(tmp_path / "plain.mp4", n=3, audio=None)
    tagged = tmp_path / "tagged.mp4"
    writing = {"metadata_errors": "surrogateescape"} if av_container._lenient_tags() else {}  # 19: its default
    with av.open(str(src)) as a, av.open(str(tagged), "w", **writing) as out:
        out.metadata["comment"] = "caf\udce9 cvtools"  # the byte 0xE9 (Latin-1 é) alone
        stream = out.add_stream_from_template(a.streams.video[0])
        for p in a.demux(a.streams.video[0]):
            if p.size:
                p.stream = stream
                out.mux(p)
    assert probe_video(tagged).frames == 3
    monkeypatch.setattr(av_container, "_lenient_tags", lambda: dict(writing))  # tags read as PyAV 19 does
    assert read_video_comment(tagged) == "caf cvtools"


# ----------------------------------------------------------------------------- variable frame rate

#: frame times of the variable-rate clip (s): three frames 10 ms apart among slower ones, near a
#: point of the average rate's grid (about 0.1 s), where they used to be pulled
VFR_TIMES = (0.0, 0.1, 0.2, 0.21, 0.22, 0.4, 0.5, 0.65, 0.8, 0.95)
VFR_LENGTH = VFR_TIMES[-1] + 0.1
VFR_BASE = Fraction(1, 90000)


def make_vfr_clip(path: Path, times=VFR_TIMES) -> Path:
    """An mp4 made with PyAV directly: frame k (blue level 10 + 20·k) at ``times[k]`` seconds
    exactly (time base 1/90000), and a 440 Hz AAC track as long as the clip (last frame + 0.1 s)."""
    c = av.open(str(path), "w")
    v = c.add_stream("libx264", rate=10)
    v.width, v.height, v.pix_fmt = W, H, "yuv420p"
    v.time_base = v.codec_context.time_base = VFR_BASE
    a = c.add_stream("aac", rate=RATE)
    a.layout = "mono"
    for k, t in enumerate(times):
        frame = av.VideoFrame.from_ndarray(frame_image(k), format="rgb24")
        frame.pts, frame.time_base = round(Fraction(t) / VFR_BASE), VFR_BASE
        c.mux(v.encode(frame))
    c.mux(v.encode(None))
    total = round(RATE * VFR_LENGTH)
    pcm = (0.5 * np.sin(2 * np.pi * 440 * np.arange(total) / RATE)).astype(np.float32)
    for k in range(0, total, 1024):
        fr = av.AudioFrame.from_ndarray(pcm[None, k:k + 1024], format="flt", layout="mono")
        fr.sample_rate, fr.pts = RATE, k
        c.mux(a.encode(fr))
    c.mux(a.encode(None))
    c.close()
    return path


def frame_times(path: Path):
    """(sorted presentation times of the video packets in seconds, the stream's time base)."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        times = sorted(Fraction(p.pts) * Fraction(s.time_base) for p in c.demux(s) if p.pts is not None)
        return times, Fraction(s.time_base)


@pytest.fixture(scope="module")
def vfr_clip(tmp_path_factory):
    src = make_vfr_clip(tmp_path_factory.mktemp("vfr") / "vfr.mp4")
    assert frame_times(src)[0] == [Fraction(t).limit_denominator(90000) for t in VFR_TIMES]
    return src


def assert_times(dst: Path, expect):
    times, base = frame_times(dst)
    assert len(set(times)) == len(times), times  # no two frames at one time (one would never show)
    assert len(times) == len(expect), (times, expect)
    assert all(abs(t - Fraction(e)) <= base for t, e in zip(times, expect)), ([float(t) for t in times], expect)


@pytest.mark.parametrize("effect", ["stylize", "dream"])
def test_variable_frame_rate_keeps_each_frames_time(tmp_path, vfr_clip, effect):
    """Frames 10 ms apart (0.20, 0.21, 0.22 s) among slower ones come out at their own times
    (within a tick of the output's time base), in order, with the audio; they used to be pulled
    onto the average rate's grid when within a quarter frame of it, one on top of another."""
    from cvtools.video.process import dream_video

    dst = tmp_path / f"{effect}.mp4"
    if effect == "stylize":
        assert stylize_video(Identity(), vfr_clip, dst).frames == len(VFR_TIMES)
        assert [frame_index(f.rgb) for f in read_frames(dst)] == list(range(len(VFR_TIMES)))
    else:
        assert dream_video(DreamStub(), vfr_clip, dst, warp=False).frames == len(VFR_TIMES)
    assert_times(dst, VFR_TIMES)
    _, samples, rate = audio_of(dst)
    assert abs(len(samples) / rate - VFR_LENGTH) <= 2048 / rate  # the whole track, as with a constant rate


@pytest.mark.parametrize("start, duration, first, times", [
    (0.3, 0.25, 5, (0.1, 0.2)),  # 0.4 and 0.5 s: a range between frames
    (0.215, None, 3, (0.0, 0.005, 0.185, 0.285, 0.435, 0.585, 0.735)),  # 0.21 s is on screen at 0.215 s; 0.20 s never is
])
def test_variable_frame_rate_with_a_range(tmp_path, vfr_clip, start, duration, first, times):
    """``start``/``duration`` keep the frames' own times, shifted by ``start``; the frame on
    screen at ``start`` opens the output, and one just before it that would never be seen (it
    would share time 0 with the next) is left out. The audio is cut to match."""
    dst = tmp_path / "part.mp4"
    assert stylize_video(Identity(), vfr_clip, dst, start=start, duration=duration).frames == len(times)
    assert [frame_index(f.rgb) for f in read_frames(dst)] == list(range(first, first + len(times)))
    assert_times(dst, times)
    _, samples, rate = audio_of(dst)
    length = duration or VFR_LENGTH - start
    assert abs(len(samples) / rate - length) <= 2048 / rate


# ----------------------------------------------------------------------------- absurd ranges


@pytest.mark.parametrize("args", [
    ("--start", "1e308"),  # start × fps is infinite: it used to be an OverflowError
    ("--start", "1e308", "--duration", "1e308"),
])
def test_cli_start_past_any_clip_is_one_line_naming_the_option(tmp_path, run_cli, args):
    src = make_clip(tmp_path / "clip.mp4", n=3, audio=None)
    result = run_cli("stylize", src, "--style", "mona", "--device", "cpu", *args)
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines() == [f"cvtools: error: {src}: --start {float(parse_seconds(args[1])):g} s is past "
                                          "the end of the clip (0.25 s)"], result.stderr
    assert "Traceback" not in result.output + result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]  # no output, no temporary file


def test_cli_time_that_is_no_number_of_seconds_is_a_usage_error(tmp_path, run_cli):
    """Clock times of more hours than a float holds (an internal OverflowError before) are
    refused as non-finite numbers are: the option's usage error, before any work."""
    src = make_clip(tmp_path / "clip.mp4", n=3, audio=None)
    for value in ("9" * 400 + ":00:00", "9" * 400 + ":00", "nan", "-inf", "1e400"):
        result = run_cli("dream", src, "--weights", "random", "--device", "cpu", f"--start={value}")
        assert result.exit_code == 2, (value, result.output)
        assert "Invalid value for '--start'" in result.stderr and "internal error" not in result.stderr, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_a_duration_beyond_the_clip_reads_to_its_end(tmp_path, clip):
    """1e308 s of duration is the rest of the clip (the progress total stays a frame count)."""
    from cvtools.video.process import expected_frames

    info = probe_video(clip)
    assert expected_frames(info, 0.0, 1e308) == N and expected_frames(info, 1e308) == 1
    assert stylize_video(Identity(), clip, tmp_path / "all.mp4", start=0.5, duration=1e308).frames == N // 2


@pytest.mark.parametrize("effect", ["stylize", "dream"])
@pytest.mark.parametrize("start, duration, param", [
    (float("nan"), None, "start"), (float("inf"), None, "start"), (-1.0, None, "start"), (10 ** 400, None, "start"),
    (0.0, float("nan"), "duration"), (0.0, float("-inf"), "duration"), (0.0, 0.0, "duration"),
])
def test_library_ranges_that_are_no_ranges_are_usage_errors(tmp_path, clip, effect, start, duration, param):
    """The Python API names its parameter, before any work: nothing is computed or written."""
    from cvtools.errors import UsageError
    from cvtools.video.process import dream_video

    stub = Identity() if effect == "stylize" else DreamStub()
    run = stylize_video if effect == "stylize" else dream_video
    with pytest.raises(UsageError, match=f"^{param} must be a ") as err:
        run(stub, clip, tmp_path / "out.mp4", start=start, duration=duration)
    assert err.value.params == (param,) and "\n" not in str(err.value)
    assert (stub.calls if effect == "stylize" else len(stub.starts)) == 0
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(UsageError, match=f"^{param} must be a "):
        next(read_frames(clip, start=start, duration=duration))


@pytest.mark.parametrize("command", ["stylize", "dream"])
def test_cli_size_shrinks_videos_and_enlarges_them_only_when_asked(tmp_path, run_cli, command):
    """--size only shrinks, for clips as for photos (a 64x48 clip stays 64x48 under --size 96)."""
    clip = make_clip(tmp_path / "clip.mp4", n=3, audio=None)
    common = ["--octaves", "1", "--steps", "0"] if command == "dream" else ["-s", "mona"]
    for extra, size in [((), (W, H)), (("--enlarge",), (96, 72)), ((), (32, 24))]:
        out = tmp_path / f"{command}{len(extra)}_{size[0]}.mp4"
        wanted = 32 if size[0] == 32 else 96
        r = run_cli(command, clip, "--size", wanted, *extra, *common, "-q", "-o", out)
        assert r.exit_code == 0, r.stderr
        assert probe_video(out).display_size == size
