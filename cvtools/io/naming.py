"""Output naming and the re-run policy (README "Outputs go next to each input").

Re-running a command does what was meant (see :func:`output_path_for`): outputs carry a small
provenance marker (:mod:`cvtools.io.markers`) so a finished output is recognised and skipped, one
made with other options is kept and the new result gets the next free name, and a command's own
outputs found in a folder are never taken as its inputs. What one run has named lives in an
:class:`Outputs` object the run owns and passes to the naming and writing functions.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

from cvtools.errors import CvtoolsError, ImageError, safe_path
from cvtools.io.discover import VIDEO_EXTENSIONS
from cvtools.io.markers import Provenance, input_digest, read_marker

#: Output extensions cvtools writes, and the Pillow format for each.
FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".bmp": "BMP",
            ".tif": "TIFF", ".tiff": "TIFF", ".gif": "GIF", ".ppm": "PPM"}
# Inputs whose own format would lose the result (GIF: 256 colours; PGM: grey only) or cannot
# carry the provenance marker (BMP, PPM) are saved as PNG when no extension is asked for.
DEFAULT_OUTPUT_EXT = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff"}

#: How many numbered names (``photo_dream-2.jpg`` …) to try before giving up.
MAX_NUMBERED = 999


@dataclass
class _Named:
    overwrite: bool
    input: Optional[str] = None
    provenance: Optional[Provenance] = None


@dataclass
class _Policy:
    provenance: Optional[Provenance] = None
    on_note: Optional[Callable[[str], None]] = None
    found: frozenset = frozenset()  # absolute paths found by searching folders or matching patterns
    stems: frozenset = frozenset()  # (folder, stem) of every input of the batch
    many: bool = False  # the batch has several inputs
    own: dict = field(default_factory=dict)  # (abspath, suffix) -> why it is an own output, or None
    proven: set = field(default_factory=set)  # abspaths left out because they carry this command's marker
    folders: dict = field(default_factory=dict)  # abspath of an input found in a folder -> that folder's


class OutputSkipped(CvtoolsError):
    """An input that needs no work (not a failure): its output is already there, made by the
    same command with the same options from the same input (``kind == "done"``), or the input
    is itself an output of this command found in a folder (``kind == "own_output"``: its marker
    says so; ``"named_like"``: only its name does, so the CLI names it in a note)."""

    def __init__(self, path, reason, kind: str, target=None):
        self.path = str(path)
        self.kind = kind
        self.target = target
        super().__init__(f"{safe_path(path)}: {reason}")


class Outputs:
    """What one run has named: the run owns it and passes it to :func:`output_path_for`,
    :func:`side_output_for`, :func:`~cvtools.io.atomic.save_image` and
    :func:`~cvtools.io.atomic.atomic_write` (``outputs=``). Nothing is kept between runs.

    - ``provenance`` (the command and the options that change the result) lets naming recognise
      finished outputs and lets writing tag new ones with the marker;
    - ``on_note(message)`` hears about renamed outputs;
    - within a batch (:meth:`begin`, which :func:`cvtools.batch.run` calls with the inputs it
      expanded) two inputs never get the same output file (say ``a/x.jpg`` and ``b/x.jpg`` into
      one output directory: the second gets the next free name); ``found`` are the inputs that
      came from folders and patterns (see :func:`~cvtools.io.discover.expand_inputs`), ``batch``
      all the inputs, ``folders`` those found by searching a folder -> that folder (an output
      directory mirrors the subfolders below it: ``in/sub/x.jpg`` -> ``out/sub/x_mona.jpg``);
    - every name given is recorded (:meth:`record`): whether replacing an existing file is
      allowed (a file that appears after naming is never replaced without ``overwrite``), and the
      input and provenance the marker records.

    Not shared between threads that name outputs at the same time: one object per run.
    """

    def __init__(self, provenance: Optional[Provenance] = None, on_note: Optional[Callable[[str], None]] = None,
                 found: Iterable = (), batch: Iterable = ()):
        self.provenance = provenance
        self.named: dict = {}  # realpath -> _Named
        self.begin(found, batch, on_note)

    def begin(self, found: Iterable = (), batch: Iterable = (), on_note: Optional[Callable[[str], None]] = None,
              folders: Optional[dict] = None):
        """Start a batch over ``batch`` (``found``: those from folders and patterns; ``folders``:
        absolute path of each found by searching a folder -> that folder's): claims start empty;
        returns self."""
        found = frozenset(os.path.abspath(p) for p in found)
        every = found | frozenset(os.path.abspath(p) for p in batch)
        self.claims: dict = {}  # realpath of an output -> realpath of the input it is for
        self.policy = _Policy(self.provenance, on_note, found,
                              frozenset((os.path.dirname(p), os.path.splitext(os.path.basename(p))[0]) for p in every),
                              len(every) > 1, folders=dict(folders or {}))
        return self

    def record(self, path) -> Optional[_Named]:
        """What naming decided for ``path`` (None: not named in this run)."""
        return self.named.get(os.path.realpath(path))


@contextlib.contextmanager
def notes_held(outputs: Optional[Outputs]):
    """Inside, the naming notes of ``outputs`` (an output renamed: "x exists ...; writing x-2")
    are kept in the list this yields, and told when the block ends without an error; an error
    drops them. For work known to be valid only after its outputs are named (dream's --layer
    channels, a --model's layers: checked once the network is built): the user then hears the
    refusal alone, not of a file never written. ``outputs`` None: nothing is held."""
    policy = outputs.policy if outputs is not None else None
    told = policy.on_note if policy is not None else None
    held: list = []
    if told is not None:
        policy.on_note = held.append
    try:
        yield held
    finally:
        if told is not None:
            policy.on_note = told
    for message in held:
        told(message)


def _same_file(a, b) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)  # hard links
    except OSError:
        return False


def _file_id(path):
    try:
        st = os.stat(path)  # follows symbolic links; hard links share the inode
        return (st.st_dev, st.st_ino)
    except OSError:
        return None


_input_ids: dict = {}  # id(inputs) -> (inputs, {(dev, inode): path}); one batch's list is reused


def _inputs_by_id(inputs) -> dict:
    """{(device, inode): path} of a list of inputs, computed once per list (a folder of N
    inputs would otherwise cost N² path resolutions)."""
    if not inputs:
        return {}
    cached = _input_ids.get(id(inputs))
    if cached is not None and cached[0] is inputs and len(cached[1][1]) == len(inputs):
        return cached[1][0]
    ids = {}
    for p in inputs:
        fid = _file_id(p)
        if fid is not None:
            ids.setdefault(fid, p)
    if len(_input_ids) > 8:
        _input_ids.clear()
    _input_ids[id(inputs)] = (inputs, (ids, list(inputs)))
    return ids


def _numbered(path: Path, k: int) -> Path:
    return path if k == 1 else path.with_name(f"{path.stem}-{k}{path.suffix}")


def _option_text(key, value) -> str:
    if value is True:
        return key
    if value is False:
        return f"no {key}"
    if value is None or value == []:
        return f"no {key}"
    if isinstance(value, list):
        return f"{key} {','.join(map(str, value))}"
    return f"{key} {value}"


def _differs(marker: Optional[dict], provenance: Optional[Provenance], input_path) -> Optional[str]:
    """None when ``marker`` records this very result (same command, options and input); else
    why not, for messages."""
    if marker is None:
        return "without a cvtools marker" if provenance is None else f"not made by `cvtools {provenance.command}`"
    if provenance is None:
        return f"made by `cvtools {safe_path(marker['command'])}`"
    if marker["command"] != provenance.command:
        return f"made by `cvtools {safe_path(marker['command'])}`"
    if marker["digest"] != provenance.digest:
        old, new = marker.get("options", {}), provenance.shown()
        keys = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
        if not keys:
            return "made with other options"
        was = ", ".join(safe_path(_option_text(k, old.get(k))) for k in keys[:4])
        now = ", ".join(safe_path(_option_text(k, new.get(k))) for k in keys[:4])
        more = f" and {len(keys) - 4} more" if len(keys) > 4 else ""
        return f"made with {was}{more} (this run: {now})"
    if marker["input"] != input_digest(input_path):
        return "made from another input (or from this one before it changed)"
    return None


def _own_output(input_path: Path, suffix: str, policy: _Policy) -> Optional[str]:
    """Why an input is an output of the running command, or None (memoised per batch).

    - Found in a folder or by a pattern: it carries this command's marker, or it is named
      ``STEM_SUFFIX[-N][_SIDE]`` next to a ``STEM.*`` input (and carries no other command's
      marker).
    - Named explicitly, with other inputs (a shell glob, ``photos/*.png``): only the name rule,
      with ``STEM.*`` among the inputs. A single explicit input is always an input.
    """
    key = (os.path.abspath(input_path), suffix)
    if key not in policy.own:
        found = key[0] in policy.found
        why, proven = _own_output_uncached(Path(input_path), suffix, policy, found) \
            if found or policy.many else (None, False)
        policy.own[key] = why
        if proven:
            policy.proven.add(key[0])
    return policy.own[key]


def _own_output_uncached(input_path: Path, suffix: str, policy: _Policy, found: bool) -> tuple:
    m = re.fullmatch(rf"(.+)_{re.escape(suffix)}(?:-\d+)?(?:_[A-Za-z0-9-]+)?", input_path.stem)
    named_like = bool(m) and (os.path.dirname(os.path.abspath(input_path)), m.group(1)) in policy.stems
    if not (found or named_like):
        return None, False
    marker = read_marker(input_path)
    mine = marker is not None and policy.provenance is not None and marker["command"] == policy.provenance.command
    if (found or named_like) and mine:
        return f"an output of `cvtools {safe_path(marker['command'])}`, not taken as an input", True
    if named_like and marker is None:
        # Only the name says so: left out, but still protected like an input (never replaced,
        # even with --overwrite), in case it is someone's photo after all.
        return f"named like this command's output for {safe_path(m.group(1))}.*, not taken as an input", False
    return None, False


#: the most bytes of an output name's suffix (the style or effect: a blend of paintings with long
#: file names joins them all); file systems allow 255 bytes a name, and the input's stem,
#: "-N" and the extension need their share
MAX_SUFFIX_BYTES = 80


def fitting_suffix(suffix: str) -> str:
    """``suffix``, or when it is longer than :data:`MAX_SUFFIX_BYTES` (UTF-8) its beginning and a
    short hash of the whole, so two long blends still get different names."""
    import hashlib

    raw = suffix.encode("utf-8", "surrogateescape")
    if len(raw) <= MAX_SUFFIX_BYTES:
        return suffix
    tag = hashlib.blake2b(raw, digest_size=4).hexdigest()
    head = raw[:MAX_SUFFIX_BYTES - len(tag) - 1].decode("utf-8", "ignore")  # whole characters only
    return f"{head}-{tag}"


def output_path_for(
    input_path: Path,
    output: Optional[str],
    suffix: str,
    ext: Optional[str] = None,
    many: bool = False,
    overwrite: bool = False,
    inputs: Sequence[Path] = (),
    video: bool = False,
    outputs: Optional[Outputs] = None,
) -> Path:
    """Where the result for ``input_path`` goes, under one re-run policy.

    Naming: no ``-o``: next to the input, ``<stem>_<suffix><ext>``; ``-o`` an existing
    directory, a path ending in '/', or several inputs: that directory; otherwise ``-o`` is
    the file itself. ``ext`` defaults to the input's own (PNG for GIF, PGM, BMP and other
    formats that would lose the result or cannot carry the marker).

    Re-running (with ``outputs``, the run's :class:`Outputs`, which knows the command and its
    options; ``batch.run`` starts its batch):

    - the output is already there, made by the same command and options from the same input
      (its marker says so): :class:`OutputSkipped` (``kind="done"``), so an interrupted folder
      run continues where it stopped;
    - the name is taken (another command, other options, another input, a file cvtools did not
      write, an input, another input's output in this run): the next free name,
      ``<stem>_<suffix>-2<ext>``, ``-3`` …, and ``on_note`` says why;
    - ``overwrite``: the first name that is not an input nor another input's output is replaced;
    - an input found in a folder or by a pattern that is itself an output of this command (its
      marker, or its name ``<stem>_<suffix>[-N][_side]`` next to ``<stem>.*``):
      :class:`OutputSkipped` (``kind="own_output"``).

    ``video``: the output may also be a video container (.mp4, .mov, .mkv, .webm: ``cvtools.video``).

    An explicit ``-o FILE`` is never renamed: an input there, a directory, or an existing file
    made otherwise raises ImageError (``--overwrite`` replaces the file).
    """
    input_path = Path(input_path)
    suffix = fitting_suffix(suffix)
    policy = outputs.policy if outputs is not None else None
    claims = outputs.claims if outputs is not None else None
    provenance = policy.provenance if policy is not None else None
    ext = ext or (input_path.suffix if input_path.suffix.lower() in DEFAULT_OUTPUT_EXT else ".png")
    base, explicit = _requested_path(input_path, output, suffix, ext, many, video, _subfolder(input_path, output, policy))
    if policy is not None:
        why = _own_output(input_path, suffix, policy)
        if why:
            proven = os.path.abspath(input_path) in policy.proven
            raise OutputSkipped(input_path, why, "own_output" if proven else "named_like")
    me = os.path.realpath(input_path)
    passed_over = None  # (name, why) of the first name passed over
    for k in range(1, (1 if explicit else MAX_NUMBERED) + 1):
        target = _numbered(base, k)
        key = os.path.realpath(target)
        owner = claims.get(key) if claims is not None else None
        why = _taken(target, owner, me, input_path, inputs, suffix, policy, overwrite, explicit)
        if why is not None:
            passed_over = passed_over or (target, why)
            continue
        if claims is not None:
            claims[key] = me
            outputs.named[key] = _Named(bool(overwrite), str(input_path), provenance)
        if passed_over is not None and policy is not None and policy.on_note is not None:
            policy.on_note(f"{safe_path(passed_over[0])} {passed_over[1]}; writing {safe_path(target)}")
        return target
    raise ImageError(base, f"no free output name ({base.name} to {_numbered(base, MAX_NUMBERED).name} are all "
                           "taken); clean up or choose another output path")


def _subfolder(input_path: Path, output, policy: Optional[_Policy]) -> str:
    """Where below an output directory the output for ``input_path`` goes: the input's folder
    relative to the folder argument it was found in (``sub`` for ``in/sub/x.jpg`` found in
    ``in``), so that a tree keeps its shape; '' (the output directory itself) for an input named
    on its own or matched by a pattern, one at the top of its folder, and when the output
    directory is that folder or inside it (outputs never go deeper into the tree they came from)."""
    root = policy.folders.get(os.path.abspath(input_path)) if policy is not None and output is not None else None
    if root is None:
        return ""
    rel = os.path.relpath(os.path.dirname(os.path.abspath(input_path)), root)
    if rel == os.curdir or rel.split(os.sep)[0] == os.pardir:
        return ""
    out, top = os.path.realpath(output), os.path.realpath(root)
    return "" if out == top or out.startswith(top.rstrip(os.sep) + os.sep) else rel


def _requested_path(input_path: Path, output, suffix, ext, many, video, subfolder: str = "") -> tuple:
    """(the first name :func:`output_path_for` tries, whether ``-o`` named that file itself);
    ``subfolder``: where below an output directory (:func:`_subfolder`). An output format
    cvtools cannot write is an ImageError."""
    name = f"{input_path.stem}_{suffix}{ext}"
    explicit = False
    if output is None:
        base = input_path.with_name(name)
    else:
        output = str(output)
        out = Path(output)
        if out.is_dir() or output.endswith(("/", os.sep)) or many:
            base = out / subfolder / name
        else:
            base = out
            explicit = True
    if video and base.suffix.lower() in VIDEO_EXTENSIONS - {".avi"}:  # a video output (cvtools/video)
        pass
    elif base.suffix.lower() not in FORMATS:
        hint = "; to write into a directory, end the output path with '/'" if not base.suffix else ""
        if video:
            raise ImageError(base, f"unknown video format {base.suffix or '(no extension)'!r}; use .mp4, .mov, "
                                   f".mkv, .webm, .gif or .webp{hint}")
        raise unknown_image_format(base)
    return base, explicit


def unknown_image_format(path, folder_hint: bool = True) -> ImageError:
    """The one-line error for an image output whose extension cvtools does not write (with how to
    name a folder instead when ``path`` has no extension and ``folder_hint``)."""
    path = Path(path)
    hint = "; to write into a directory, end the output path with '/'" if folder_hint and not path.suffix else ""
    return ImageError(path, f"unknown output format {path.suffix or '(no extension)'!r}; use .png, .jpg, "
                            f".webp, .tif or .bmp{hint}")


def _is_input(target, input_path, inputs, suffix, policy) -> bool:
    """Whether ``target`` is the input or another input of the batch. An earlier output of this
    command found in the folder was left out of the inputs: its name is free to be recognised
    as done (or passed over as made otherwise)."""
    if _same_file(input_path, target):
        return True
    p = _inputs_by_id(inputs).get(_file_id(target))
    if p is None:
        return False
    if policy is not None:
        _own_output(Path(p), suffix, policy)
        return os.path.abspath(p) not in policy.proven
    return True


def _taken(target, owner, me, input_path, inputs, suffix, policy, overwrite, explicit) -> Optional[str]:
    """Why ``target`` cannot be the output for ``input_path`` (None: it can): an input, a
    directory, another input's output in this run (``owner``), or an existing file made
    otherwise. A finished output of this very run raises OutputSkipped; an explicit ``-o``
    that is taken raises ImageError instead of moving on to the next name."""
    provenance = policy.provenance if policy is not None else None
    if _is_input(target, input_path, inputs, suffix, policy):
        if explicit:
            raise ImageError(target, "output would overwrite an input; choose another output path")
        return "is an input"
    if target.is_dir():
        if explicit:
            raise ImageError(target, "output is a directory; end the output path with '/' to write into it")
        return "is a directory"
    if owner is not None and owner != me:
        if explicit:
            raise ImageError(target, f"is also the output for {safe_path(owner)} in this run; give the "
                                     "inputs different names or write them to different output directories")
        return f"is the output for {safe_path(owner)} in this run"
    if os.path.lexists(target) and not overwrite and owner != me:
        why = _differs(read_marker(target), provenance, input_path)
        if why is None:
            raise OutputSkipped(input_path, f"already done: {safe_path(target)} holds this command's result "
                                            "for it with the same options (overwrite=True redoes it)",
                                "done", target)
        why = f"exists, {why}"
        if explicit:
            raise ImageError(target, f"output {why}; pass overwrite=True to replace it, or choose another output path",
                             param="overwrite")
        return why
    return None


def side_output_for(path, input_path, overwrite: bool = False, inputs: Sequence[Path] = (),
                    outputs: Optional[Outputs] = None) -> Path:
    """Claim a file written beside an output named by :func:`output_path_for` (visualize's
    ``NAME_sanity.jpg``, raw ``.npy`` maps) like a main output: never an input (even with
    ``overwrite``), never another input's output in this run, never an existing file without
    ``overwrite`` unless it is this command's own result for the same input and options.
    Returns ``path``; raises ImageError otherwise."""
    path = Path(path)
    input_path = Path(input_path)
    policy = outputs.policy if outputs is not None else None
    claims = outputs.claims if outputs is not None else None
    provenance = policy.provenance if policy is not None else None
    proven = policy.proven if policy is not None else set()
    for p in list(inputs) + [input_path]:
        if _same_file(p, path) and os.path.abspath(p) not in proven:
            raise ImageError(path, "side output would overwrite an input; rename the input or choose another output path")
    if path.is_dir():
        raise ImageError(path, "side output is a directory")
    key = os.path.realpath(path)
    me = os.path.realpath(input_path)
    owner = claims.get(key) if claims is not None else None
    if owner is not None and owner != me:
        raise ImageError(path, f"is also an output for {safe_path(owner)} in this run")
    replace = bool(overwrite)
    if os.path.lexists(path) and not overwrite and owner != me:
        why = _differs(read_marker(path), provenance, input_path)
        if why is not None:
            raise ImageError(path, f"output exists, {why}; pass overwrite=True to replace it", param="overwrite")
        replace = True  # this very result, from an interrupted run
    if claims is not None:
        claims[key] = me
        outputs.named[key] = _Named(replace, str(input_path), provenance)
    return path
