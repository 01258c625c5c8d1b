"""Input discovery: files, folders and glob patterns to the list of files a command runs on."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

from cvtools.errors import ImageError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
#: Video files (cvtools/video) that stylize and dream take: found in folders only when a command
#: asks (``expand_inputs(extensions=...)``), named by ``output_path_for(video=True)``.
VIDEO_EXTENSIONS = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi"}


def expand_inputs(inputs: Iterable[str], recursive: bool = True, found: Optional[set] = None,
                  extensions: Optional[Iterable[str]] = None,
                  folders: Optional[dict] = None) -> tuple[list[Path], list[ImageError]]:
    """Files, directories (searched for images) and glob patterns to a list of image paths.

    Returns (paths, problems): a pattern or directory that yields nothing is a problem, reported
    by the caller while the rest of the batch goes on. ``found``, if given, receives the absolute
    paths that came from searching a directory or matching a pattern (not named one by one):
    among those, a command's own earlier outputs are left out (see :func:`output_path_for`).
    ``folders``, if given, receives for each file found by searching a folder argument its
    absolute path -> that folder's (an output directory mirrors the subfolders below it).
    """
    paths: list[Path] = []
    problems: list[ImageError] = []
    seen = set()
    extensions = IMAGE_EXTENSIONS if extensions is None else set(extensions)  # searched for in folders

    def add(p: Path, searched: bool):
        key = os.path.abspath(p)
        if searched and found is not None and key not in seen:
            found.add(key)
        if key not in seen:
            seen.add(key)
            paths.append(p)

    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found_here = sorted(
                q for q in (p.rglob("*") if recursive else p.iterdir())
                if q.is_file() and q.suffix.lower() in extensions and not q.name.startswith(".")
            )
            if not found_here:
                what = "images or videos" if extensions & VIDEO_EXTENSIONS else "images"
                problems.append(ImageError(p, f"directory holds no {what}"))
            for q in found_here:
                add(q, True)
                if folders is not None:
                    folders.setdefault(os.path.abspath(q), os.path.abspath(p))
        elif p.exists():
            add(p, False)
        elif any(ch in item for ch in "*?["):
            found_here = sorted(Path(q) for q in glob.glob(item, recursive=True) if Path(q).is_file())
            if not found_here:
                problems.append(ImageError(item, "pattern matches no files"))
            for q in found_here:
                add(q, True)
        else:
            problems.append(ImageError(p, "no such file or directory"))
    return paths, problems


@dataclass
class Inputs:
    """The files one command runs on, found once (:func:`find_inputs`) and handed to both the
    command's work and :func:`cvtools.batch.run`: ``paths`` in order, ``problems`` (a folder or
    pattern that gave nothing, a missing file: ImageErrors reported per input), ``found`` (the
    absolute paths that came from searching folders or matching patterns), ``given`` (what was
    asked), ``folders`` (absolute path of each file found by searching a folder -> that folder's)."""

    given: tuple
    paths: list
    problems: list
    found: set
    folders: dict = field(default_factory=dict)

    def refuse_videos(self, command: str) -> "Inputs":
        """For a command that takes images only (``command``: ``visualize``): each video file
        given or matched becomes a problem that says so, naming the commands that take videos,
        not a decoding error that suggests the file is damaged. Returns ``self``."""
        videos = [p for p in self.paths if Path(p).suffix.lower() in VIDEO_EXTENSIONS]
        for p in videos:
            self.problems.append(ImageError(p, f"a video; {command} takes images, not videos "
                                               "(stylize and dream take videos)"))
        self.paths = [p for p in self.paths if p not in videos]
        return self

    @property
    def many(self) -> bool:
        """Several inputs, or a folder (outputs then go into a directory, named per input)."""
        return len(self.paths) > 1 or any(Path(i).is_dir() for i in self.given)


def find_inputs(inputs: Iterable[str], extensions: Optional[Iterable[str]] = None, recursive: bool = True,
                output: Optional[str] = None) -> Inputs:
    """:func:`expand_inputs` once, kept as :class:`Inputs`. ``output`` (``-o``): checked against
    them: a file's name (``out.mp4``) for several inputs is a UsageError, not a folder made with
    that name."""
    found: set = set()
    folders: dict = {}
    paths, problems = expand_inputs(inputs, recursive=recursive, found=found, extensions=extensions, folders=folders)
    result = Inputs(tuple(str(i) for i in inputs), paths, problems, found, folders)
    if output is not None and result.many and len(paths) > 1:
        _check_one_output_for_many(str(output), len(paths))
    return result


def _check_one_output_for_many(output: str, count: int) -> None:
    from cvtools.errors import UsageError, safe_path
    from cvtools.io.naming import FORMATS

    out = Path(output)
    if out.is_dir() or output.endswith(("/", os.sep)) or out.suffix.lower() not in set(FORMATS) | VIDEO_EXTENSIONS:
        return
    raise UsageError(f"-o {safe_path(output)} names one file, but there are {count} inputs; give a folder "
                     f"(e.g. -o {safe_path(out.with_suffix(''))}/) or one input", param="output")
