"""Videos among the inputs of a batch (``cvtools stylize``/``dream``, :func:`cvtools.stylize_files`).

A video file (mp4, mov, mkv, webm, m4v, avi) or an animated GIF/WebP among the inputs is one
input of the batch like a photo: it is named like one (``clip_starry_night.mp4`` next to
``clip.mp4``, the same re-run policy: markers, skips, ``-2``), fails alone with one line naming
it, and is written atomically. Its frames go through :mod:`cvtools.video.process`;
``progress_for(path)`` gives the object that hears how far it is (the command line's is a
progress bar in frames).
"""

from __future__ import annotations


def media_extensions():
    """File extensions searched for in folders by commands that take videos too."""
    from cvtools.io.discover import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS

    return IMAGE_EXTENSIONS | VIDEO_EXTENSIONS


def _note(path, target, result) -> str:
    from cvtools.errors import safe_path

    rate = f"{result.rate:.1f} frames/s" if result.rate >= 1 else f"{1 / max(result.rate, 1e-9):.1f} s/frame"
    audio = f", {result.audio}" if result.audio else ""
    return (f"{safe_path(path)} -> {safe_path(target)} ({result.frames} frame{'' if result.frames == 1 else 's'}, {result.width}x{result.height}, "
            f"{float(result.fps):g} fps{audio}; {rate})")


class _NoProgress:
    """What a video run reports to when nobody listens."""

    def __call__(self, done, total):
        pass

    def note(self, message):
        pass

    def close(self):
        pass


class VideoJob:
    """Naming and running one video of a batch: ``target(path)`` claims its output (main thread,
    input order), ``run(path, target)`` makes it and returns the note. ``make(path, target, info,
    progress, on_note, outputs) -> VideoResult`` is the command's own part (stylize_video, dream_video);
    ``outputs``: the run's :class:`~cvtools.io.naming.Outputs` (naming, marker, overwrite decision)."""

    def __init__(self, make, suffix, output=None, overwrite=False, many=False, inputs=(), quiet=False, outputs=None,
                 max_pixels=-1, progress_for=None):
        self.make, self.suffix = make, suffix
        self.output, self.overwrite, self.many, self.inputs, self.quiet = output, overwrite, many, inputs, quiet
        self.outputs, self.max_pixels = outputs, max_pixels
        self.progress_for = progress_for or (lambda path: _NoProgress())

    def target(self, path):
        from cvtools.io.naming import output_path_for
        from cvtools.video.io import DEFAULT_OUTPUT_EXT, check_output_format

        ext = DEFAULT_OUTPUT_EXT.get(path.suffix.lower(), ".mp4")
        target = output_path_for(path, self.output, self.suffix, ext=ext, many=self.many, overwrite=self.overwrite,
                                 inputs=self.inputs, video=True, outputs=self.outputs)
        check_output_format(target)
        return target

    def claim(self, path):
        """:meth:`target`, with its naming notes ("clip_dream.mp4 exists ...; writing
        clip_dream-2.mp4") told only once ``make.ready()`` (where the maker has one: building
        its network) has passed: options the network refuses (dream's --layer channels) then
        come alone, not after a note about a file never written. Without such a note nothing is
        built here (a broken clip still fails without loading the network)."""
        from cvtools.io.naming import notes_held

        with notes_held(self.outputs) as held:
            target = self.target(path)
            if held:
                getattr(self.make, "ready", lambda: None)()
        return target

    def run(self, path, target) -> str:
        from cvtools.video.io import probe_video

        info = probe_video(path, max_pixels=self.max_pixels)  # the frames are read with this info
        bar = self.progress_for(path)  # progress(done, total), note(message), close()
        try:
            result = self.make(path, target, info, bar, bar.note, self.outputs)
        finally:
            bar.close()
        return None if self.quiet else _note(path, target, result)


def is_video_input(path) -> bool:
    from cvtools.video.io import is_video

    return is_video(path)


class _StagedWithVideos:
    """The stages of a staged image work (``cvtools.batch.StagedWork``) that also take videos: a
    video is named in ``prepare`` and made whole in the compute stage (its own decode and encode
    threads keep the device busy); photos go through the wrapped stages unchanged."""

    def __init__(self, work, job: VideoJob):
        self.work, self.job = work, job
        self.targets = {}
        self.videos = set()

    def prepare(self, path):
        if is_video_input(path):
            self.videos.add(path)
            self.targets[path] = self.job.claim(path)
        elif self.work.prepare is not None:
            self.work.prepare(path)

    def load(self, path):
        return None if path in self.videos else self.work.load(path)

    def compute(self, path, item):
        if path in self.videos:
            self.videos.discard(path)
            return _VideoDone(self.job.run(path, self.targets.pop(path)))
        return self.work.compute(path, item)

    def save(self, path, pending):
        if isinstance(pending, _VideoDone):
            return pending.note
        return self.work.save(path, pending)

    def key(self, path, item):
        """The wrapped work's group key for a photo (``cvtools.batch.Grouping``); a video goes alone."""
        return None if path in self.videos else self.work.group.key(path, item)


def _staged_with_videos(work, job: VideoJob):
    """A ``cvtools.batch.StagedWork`` that also takes videos (:class:`_StagedWithVideos`)."""
    from cvtools.batch import Grouping, StagedWork

    stages = _StagedWithVideos(work, job)
    group = None if work.group is None else Grouping(stages.key, work.group.compute)
    return StagedWork(load=stages.load, compute=stages.compute, save=stages.save, prepare=stages.prepare,
                      threads=work.threads, extensions=media_extensions(), group=group, on_gpu=work.on_gpu)


class _VideoDone:
    __slots__ = ("note",)

    def __init__(self, note):
        self.note = note


def _per_file_with_videos(work, job: VideoJob):
    """A ``cvtools.batch.PerFileWork`` (``work(path) -> note``) that also takes videos."""
    from cvtools.batch import PerFileWork

    def run(path):
        if is_video_input(path):
            return job.run(path, job.claim(path))
        return work.fn(path)

    return PerFileWork(run, extensions=media_extensions())


class _VideoItem:
    __slots__ = ("path", "target")

    def __init__(self, path, target):
        self.path, self.target = path, target


def _batched_with_videos(work, job: VideoJob):
    """A ``cvtools.batch.BatchedWork`` that also takes videos: a video is prepared as its own
    one-item batch (a key no photo shares) and made whole when its turn comes."""
    from cvtools.batch import BatchedWork

    def prepare(path):
        if is_video_input(path):
            return _VideoItem(path, job.claim(path))
        return work.prepare(path)

    def key(item):
        if isinstance(item, _VideoItem):
            return ("video", str(item.path))
        if work.key is not None:
            return work.key(item)
        x = item["x"] if isinstance(item, dict) else item
        return tuple(x.shape)

    def compute(items):
        if isinstance(items[0], _VideoItem):
            return [job.run(items[0].path, items[0].target)]
        return work.compute(items)

    def finish(path, item, result):
        return result if isinstance(item, _VideoItem) else work.finish(path, item, result)

    def load(item):
        return item if isinstance(item, _VideoItem) else work.load(item)

    return BatchedWork(prepare=prepare, compute=compute, finish=finish, batch_size=work.batch_size, key=key,
                       lookahead=work.lookahead, extensions=media_extensions(),
                       load=None if work.load is None else load, threads=work.threads, on_gpu=work.on_gpu)


def with_videos(work, make, suffix, output=None, overwrite=False, many=False, inputs=(), quiet=False, outputs=None,
                max_pixels=-1, progress_for=None):
    """``work`` (a command's per-photo :class:`cvtools.batch.Work`: staged, batched or per file; a
    plain function is per file) extended to videos, the same kind of work: each video input is
    made by ``make(path, target, info, progress, on_note, outputs) -> VideoResult`` into an output
    named by the image policy (``NAME_SUFFIX.mp4``; .mov/.mkv keep their container)."""
    from cvtools.batch import BatchedWork, PerFileWork, StagedWork, as_work

    job = VideoJob(make, suffix, output=output, overwrite=overwrite, many=many, inputs=inputs, quiet=quiet,
                   outputs=outputs, max_pixels=max_pixels, progress_for=progress_for)
    work = as_work(work)
    if isinstance(work, BatchedWork):
        return _batched_with_videos(work, job)
    if isinstance(work, StagedWork):
        return _staged_with_videos(work, job)
    if isinstance(work, PerFileWork):
        return _per_file_with_videos(work, job)
    raise TypeError(f"videos cannot join a {type(work).__name__}")


def frame_size(info, size, enlarge=False):
    """The ``size`` to read a clip's frames at: the longer side ``size`` when that shrinks them
    (or with ``enlarge``), else None (the clip's own size): ``--size`` only shrinks, as for photos."""
    if not size or enlarge:
        return size
    return size if size < max(info.display_size) else None


def stylize_maker(stylizer, size=None, strength=1.0, preserve_color=False, tile="auto", start=None, duration=None,
                  stable=None, enlarge=False, tune=None):
    """``make`` for ``cvtools stylize``: stylize_video with the command's options (``tune``: as
    stylize_video's; None decides by the clip's length)."""

    def make(path, target, info, progress, on_note, outputs=None):
        from cvtools.deferred import resolve
        from cvtools.video.process import stylize_video

        built = resolve(stylizer)  # the command builds it at the first input that needs it
        stabilizer = None
        if stable:
            from cvtools.video.stability import stabilizer_for

            stabilizer = stabilizer_for(built)
        return stylize_video(built, path, target, start=start or 0.0, duration=duration,
                             size=frame_size(info, size, enlarge),
                             strength=strength, preserve_color=preserve_color, tile=tile, stable=stabilizer,
                             progress=progress, on_note=on_note, info=info, outputs=outputs, tune=tune)

    return make


def dream_maker(engine, size=None, seed=0, start=None, duration=None, stable=None, enlarge=False):
    """``make`` for ``cvtools dream``: dream_video; ``stable`` (default on) starts each frame from the
    previous dream carried along the optical flow."""

    def make(path, target, info, progress, on_note, outputs=None):
        from cvtools.deferred import resolve
        from cvtools.video.process import dream_video

        return dream_video(resolve(engine), path, target, start=start or 0.0, duration=duration,
                           size=frame_size(info, size, enlarge), seed=seed,
                           warp=stable is not False, progress=progress, on_note=on_note, info=info,
                           outputs=outputs)

    def ready():  # the network built (its --layer channels checked) before the output's name is told
        from cvtools.deferred import resolve

        resolve(engine)

    make.ready = ready
    return make
