"""The video options of ``cvtools stylize`` and ``cvtools dream`` (--start, --duration,
--stable) and the progress bar in frames (rate and ETA) each video shows; how videos among the
inputs are named and made is the library's (:mod:`cvtools.video.jobs`).

Only click is imported at module level (``cvtools --help`` stays instant).
"""

from __future__ import annotations

import re

import click

from cvtools.cli.params import AddedLaterOption

_CLOCK = re.compile(r"^(?:(\d+):)?(\d+):(\d+(?:\.\d*)?)$")


def parse_seconds(text) -> float:
    """'12', '12.5', '1:30', '0:01:30.5' -> seconds (ValueError otherwise)."""
    text = str(text).strip()
    m = _CLOCK.match(text)
    if m:
        hours, minutes, seconds = m.groups()
        if int(minutes) >= 60 and hours is not None or float(seconds) >= 60:
            raise ValueError(text)
        try:
            return int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)
        except OverflowError:  # more hours than a float holds (the sum becomes a float)
            raise ValueError(text) from None
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(text)
    return value


def _time_option(ctx, param, value):
    if value is None:
        return None
    try:
        seconds = parse_seconds(value)
    except ValueError:
        raise click.BadParameter(f"{value!r}: give seconds (12.5) or a time (1:30, 0:01:30.5)") from None
    if seconds < 0 or (param.name == "duration" and seconds == 0):
        raise click.BadParameter(f"{value!r} must be {'positive' if param.name == 'duration' else 'at least 0'}")
    return seconds


def video_options(f):
    """--start, --duration, --stable/--no-stable (videos only; photos ignore them)."""
    options = [
        click.option("--start", cls=AddedLaterOption, callback=_time_option, metavar="TIME",
                     help="Videos: begin at TIME (seconds like 12.5, or 1:30) into the clip; the audio is cut to match."),
        click.option("--duration", cls=AddedLaterOption, callback=_time_option, metavar="TIME",
                     help="Videos: process only this long a part (seconds or 0:45) from --start."),
        click.option("--stable/--no-stable", "stable", cls=AddedLaterOption, default=None,
                     help="Videos: steadier results. stylize shifts each frame so the scene keeps its place on the "
                          "network's grid as the camera moves, and carries each stroke along the optical flow from "
                          "the frame that painted it wherever the network agrees (repainting where it does not, "
                          "where things are uncovered and on zooms), so strokes stay crisp; dream "
                          "starts each frame from the previous dream carried along the flow. Default: on for dream, "
                          "off for stylize (styles trained with --temporal-weight are steady frame by frame)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def note_video_options_unused(paths, quiet: bool = False) -> None:
    """One note when --start, --duration or --stable was given and no input is a video: photos
    ignore them, and were silently accepted (as dream says of --fps without --frames)."""
    from click.core import ParameterSource

    ctx = click.get_current_context(silent=True)
    if quiet or ctx is None:
        return
    flags = {"start": "--start", "duration": "--duration", "stable": "--stable" if ctx.params.get("stable") else
             "--no-stable"}
    given = [flag for name, flag in flags.items() if ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE]
    if not given or not paths:
        return
    from cvtools.video.jobs import is_video_input

    if any(is_video_input(p) for p in paths):
        return
    click.echo(f"cvtools: note: {' and '.join(given)} only {'apply' if len(given) > 1 else 'applies'} to videos; "
               "the inputs are photos, so nothing changes", err=True)


class FrameBar:
    """``progress(done, total)`` drawn as a tqdm bar in frames (rate and ETA), on a terminal only."""

    def __init__(self, name: str, quiet: bool):
        self.name, self.quiet = name, quiet
        self.bar = None
        self.done = 0

    def __call__(self, done, total):
        if self.quiet:
            return
        if self.bar is None:
            import sys

            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=self.name, unit="frame", file=sys.stderr, dynamic_ncols=True,
                            leave=False, disable=None, smoothing=0.1)  # None: drawn on a terminal only
        if total and total != self.bar.total:
            self.bar.total = total
        self.bar.update(done - self.done)
        self.done = done

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def note(self, message):
        """A note from the video run, above the bar when there is one."""
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.write(f"cvtools: note: {message}")
        else:
            from cvtools.cli.common import echo_err

            echo_err(f"note: {message}")


def frame_bars(quiet: bool):
    """``progress_for`` for :func:`cvtools.video.jobs.with_videos`: a bar in frames per video."""
    return lambda path: FrameBar(path.name, quiet)
