"""Video inputs that used to break cvtools (issue #26): a PyAV without ``metadata_errors``
(PyAV 19), variable frame rate clips, absurd ``start``/``duration``. Tiny clips made in code
with PyAV directly (see tests/test_video_io.py), all on the CPU."""

from __future__ import annotations

import av
import pytest
from test_video_io import Identity, N, frame_index, make_clip

from cvtools.video import io as video_io
from cvtools.video.io import probe_video, read_frames, read_video_comment
from cvtools.video.process import stylize_video


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("clips") / "clip.mp4")


# ----------------------------------------------------------------------------- PyAV 19


@pytest.fixture
def fresh_av_keywords():
    """``_lenient_tags`` decides once per process: decide again with the av a test sets up, and
    again after it (for the real one)."""
    decide = video_io._lenient_tags
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
    assert video_io._lenient_tags() == ({"metadata_errors": "ignore"} if major < 19 else {})
    with video_io.open_input(clip, "mov") as container:
        assert container.streams.video


def test_tags_that_are_not_utf8_neither_stop_a_video_nor_leak_surrogates(tmp_path, monkeypatch, fresh_av_keywords):
    """A comment with a byte that is not UTF-8: PyAV 19 decodes it with surrogateescape (a lone
    surrogate, which cannot be printed or encoded), PyAV 18 as told; either way the file reads
    and the comment comes back as plain text without the bad byte."""
    src = make_clip(tmp_path / "plain.mp4", n=3, audio=None)
    tagged = tmp_path / "tagged.mp4"
    writing = {"metadata_errors": "surrogateescape"} if video_io._lenient_tags() else {}  # 19: its default
    with av.open(str(src)) as a, av.open(str(tagged), "w", **writing) as out:
        out.metadata["comment"] = "caf\udce9 cvtools"  # the byte 0xE9 (Latin-1 é) alone
        stream = out.add_stream_from_template(a.streams.video[0])
        for p in a.demux(a.streams.video[0]):
            if p.size:
                p.stream = stream
                out.mux(p)
    assert probe_video(tagged).frames == 3
    monkeypatch.setattr(video_io, "_lenient_tags", lambda: dict(writing))  # tags read as PyAV 19 does
    assert read_video_comment(tagged) == "caf cvtools"
