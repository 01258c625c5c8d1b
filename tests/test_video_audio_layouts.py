"""Sound a video output cannot simply copy (cvtools/video/io.py, process.py): PCM in AVI and
Matroska, whose demuxers report the layout as "1 channels" / "2 channels" (order unspecified,
which the AAC encoder refuses), re-encoded with the standard layout of that channel count; an
encoder that refuses the sound all the same drops it with a note, never the video; an output
that cannot hold sound (GIF, animated WebP) says that it was left out. Clips are
made in code with PyAV: 12 frames of 160x96 at 12 fps and one second of a 440 Hz sine."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import av  # a dependency: a missing PyAV fails here, it does not skip
import numpy as np
import pytest

from cvtools.video import io as video_io
from cvtools.video.io import probe_video, read_frames
from cvtools.video.process import stylize_video

W, H, N, FPS = 160, 96, 12, 12


class Identity:
    """A stand-in stylizer: returns the frame."""

    def __call__(self, x, **kwargs):
        return x


def pcm_clip(path: Path, vcodec: str, rate: int, layout: Optional[str]) -> Path:
    """N frames of ``vcodec`` and one second of a 440 Hz sine as 16-bit PCM in ``layout`` (None:
    no sound)."""
    c = av.open(str(path), "w")
    v = c.add_stream(vcodec, rate=FPS)
    v.width, v.height, v.pix_fmt = W, H, "yuv420p"
    if layout is not None:
        a = c.add_stream("pcm_s16le", rate=rate)
        a.layout = layout
    for k in range(N):
        img = np.full((H, W, 3), 10 + 20 * k, np.uint8)
        for p in v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
            c.mux(p)
    for p in v.encode(None):
        c.mux(p)
    if layout is None:
        c.close()
        return path
    channels = 2 if layout == "stereo" else 1
    sine = (8000 * np.sin(2 * np.pi * 440 * np.arange(rate) / rate)).astype(np.int16)
    for k in range(0, rate, 1024):
        chunk = np.repeat(sine[k:k + 1024], channels)[None]  # interleaved
        fr = av.AudioFrame.from_ndarray(chunk, format="s16", layout=layout)
        fr.sample_rate, fr.pts = rate, k
        for p in a.encode(fr):
            c.mux(p)
    for p in a.encode(None):
        c.mux(p)
    c.close()
    return path


def sound_of(path: Path):
    """(codec, layout name, sample rate, seconds of sound) of a file's first audio track."""
    with av.open(str(path)) as c:
        s = c.streams.audio[0]
        samples = sum(f.samples for f in c.decode(s))
        cc = s.codec_context
        return cc.name, cc.layout.name, cc.sample_rate, samples / cc.sample_rate


@pytest.mark.parametrize("name,vcodec,rate,layout,out,expect", [
    ("mono.avi", "mpeg4", 22050, "mono", "out.mp4", ("aac", "mono", 22050)),
    ("stereo.avi", "mpeg4", 44100, "stereo", "out.mp4", ("aac", "stereo", 44100)),
    ("stereo.mkv", "libx264", 48000, "stereo", "out.mp4", ("aac", "stereo", 48000)),
    ("mono.avi", "mpeg4", 22050, "mono", "out.webm", ("opus", "mono", 48000)),
])
def test_pcm_with_unspecified_layout_is_re_encoded(tmp_path, name, vcodec, rate, layout, out, expect):
    """The demuxer says "N channels"; the output gets the standard layout of N channels, the
    whole second of sound and every frame (it used to fail: avcodec_open2("aac") returned 22)."""
    src = pcm_clip(tmp_path / name, vcodec, rate, layout)
    with av.open(str(src)) as c:  # what made the encoder refuse it: no channel order
        assert c.streams.audio[0].codec_context.layout.name.endswith(" channels")
    result = stylize_video(Identity(), src, tmp_path / out)
    assert result.frames == N and "re-encoded" in result.audio
    codec, got_layout, got_rate, seconds = sound_of(tmp_path / out)
    assert (codec, got_layout, got_rate) == expect
    assert abs(seconds - 1.0) <= 2048 / got_rate, seconds
    assert len(list(read_frames(tmp_path / out))) == N


def test_an_audio_encoder_that_refuses_drops_the_sound_not_the_video(tmp_path, monkeypatch):
    """If the encoder cannot be opened for the sound all the same, the video is written without
    it, with a one-line note naming the file and why."""
    src = pcm_clip(tmp_path / "pcm.avi", "mpeg4", 22050, "mono")

    def refuse(codec, ain):
        raise av.ArgumentError(22, "Invalid argument")

    monkeypatch.setattr(video_io, "_audio_settings", refuse)
    notes = []
    result = stylize_video(Identity(), src, tmp_path / "out.mp4", on_note=notes.append)
    assert result.frames == N and not result.audio
    assert not probe_video(tmp_path / "out.mp4").has_audio
    assert len(list(read_frames(tmp_path / "out.mp4"))) == N
    dropped = [n for n in notes if n.startswith("pcm.avi: sound dropped: the AAC encoder refused")]
    assert len(dropped) == 1 and "\n" not in dropped[0] and "Invalid argument" in dropped[0], notes


@pytest.mark.parametrize("out,kind", [("out.gif", "GIF"), ("out.webp", "animated WebP")])
def test_an_animation_output_notes_the_sound_it_drops(tmp_path, out, kind):
    """GIF and WebP hold no sound: the note says so and how to keep it (as for subtitles an
    output cannot hold); an input without sound gets no such note."""
    src = pcm_clip(tmp_path / "audio.mkv", "libx264", 22050, "mono")
    notes = []
    result = stylize_video(Identity(), src, tmp_path / out, on_note=notes.append)
    assert result.frames == N
    assert f"audio.mkv: sound dropped: {kind} has no audio track; -o NAME.mp4 keeps it" in notes, notes

    quiet = pcm_clip(tmp_path / "quiet.mkv", "libx264", 22050, None)
    assert not probe_video(quiet).has_audio
    notes = []
    stylize_video(Identity(), quiet, tmp_path / f"quiet{Path(out).suffix}", on_note=notes.append)
    assert not any("sound" in n for n in notes), notes
