"""Style records: what a trained style is, where its weights are, and how it was made.

A style is two files side by side: ``NAME.safetensors`` (the transformer network's weights in
fp16, with the network's shape in the file's metadata) and ``NAME.json`` (the record: painting,
artist, year, provenance of the style image, training recipe, seed, final losses, measured
quality, and the weights' SHA-256, checked on every load).

Bundled styles live in ``cvtools/style/bundled/`` (``styles/`` + ``weights/``; the repository
root links to both) so that a plain ``pip install`` ships them inside the package.

Also here, without torch, so that ``cvtools stylize`` checks its ``--style`` values before the
model libraries load: names (any case; unknown ones get "did you mean"), ``PATH:WEIGHT`` blends
(:func:`parse_style_spec`, :func:`normalized_weights`) and paintings (:func:`load_painting`).
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from cvtools.errors import UsageError, WeightsError, safe_path

BUNDLED_DIR = Path(__file__).resolve().parent / "bundled"
BUNDLED_RECORDS = BUNDLED_DIR / "styles"
BUNDLED_WEIGHTS = BUNDLED_DIR / "weights"

#: Marks our safetensors files; a file without it is refused as foreign.
FORMAT_KEY = "cvtools_style"
FORMAT_VERSION = "1"

#: A style record is a small JSON file (the bundled ones are ~2 KB); anything larger is refused
#: unread, and nesting deeper than this is refused while checking (JSON itself is parsed iteratively
#: up to Python's recursion limit, which is caught).
MAX_RECORD_BYTES = 1 << 20
MAX_NAME_CHARS = 100
_BAD_NAME_CHARS = re.compile(r"[\x00-\x1f\x7f/\\]")


def check_name(name, what: str = "style name") -> str:
    """``name`` when it can be used as one file-name component (a style's name becomes file names
    and the suffix of stylized images), else a ValueError saying why. Names come from records,
    checkpoints and the command line alike: none may climb out of a folder or hide a file."""
    if not isinstance(name, str):
        raise ValueError(f"{what} {name!r} is not text")
    if not name or len(name) > MAX_NAME_CHARS:
        raise ValueError(f"{what} must be 1-{MAX_NAME_CHARS} characters, not {len(name)}")
    if _BAD_NAME_CHARS.search(name) or name in (".", "..") or (os.altsep and os.altsep in name):
        raise ValueError(f"{what} {safe_path(repr(name))} is not a plain file name "
                         "(no path separators or control characters)")
    if name.startswith("."):
        raise ValueError(f"{what} {safe_path(repr(name))} must not start with a dot")
    return name


@dataclass
class StyleRecord:
    name: str
    title: str = ""
    artist: str = ""
    year: str = ""
    #: where the style image came from and why it may be used (copied from the shared SOURCES.md)
    provenance: Dict[str, Any] = field(default_factory=dict)
    #: {"file": "NAME.safetensors", "sha256": ..., "dtype": "float16", "bytes": ...}
    weights: Dict[str, Any] = field(default_factory=dict)
    #: {"width": 0.5, "residual_blocks": 5}
    network: Dict[str, Any] = field(default_factory=dict)
    #: backbone, layers, loss weights, sizes, steps, batch size, learning rate, seed
    recipe: Dict[str, Any] = field(default_factory=dict)
    #: date, device, torch version, duration, images/s, final losses
    training: Dict[str, Any] = field(default_factory=dict)
    #: measured Gram and content distances on held-out photos (tools/style_quality.py)
    quality: Dict[str, Any] = field(default_factory=dict)
    #: the record's own path (not serialised)
    path: Optional[Path] = field(default=None, repr=False, compare=False)
    #: the directory the weights file name is relative to (not serialised)
    weights_dir: Optional[Path] = field(default=None, repr=False, compare=False)

    # ------------------------------------------------------------------ files
    @property
    def weights_path(self) -> Path:
        if not self.weights.get("file"):
            raise WeightsError(f"style {self.name!r}: its record names no weights file")
        base = self.weights_dir or (self.path.parent if self.path else Path("."))
        return base / self.weights["file"]

    def to_dict(self) -> Dict[str, Any]:
        d = asdict(self)
        d.pop("path")
        d.pop("weights_dir")
        return d

    @classmethod
    def from_dict(cls, data: Dict[str, Any], path: Optional[Path] = None,
                  weights_dir: Optional[Path] = None) -> "StyleRecord":
        """A record from its JSON object, every field checked first (a record is untrusted input:
        its name becomes file names, its weights file is opened); any problem is one
        WeightsError line naming the file."""
        where = safe_path(path) if path is not None else "style record"
        if not isinstance(data, dict):
            raise WeightsError(f"{where}: not a style record (not a JSON object)")
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k not in ("path", "weights_dir")}
        if "name" not in known:
            raise WeightsError(f"{where}: not a style record (no 'name')")
        try:
            _check_record_fields(known)
        except ValueError as exc:
            raise WeightsError(f"{where}: not a valid style record ({exc})") from None
        return cls(**known, path=path, weights_dir=weights_dir)

    def save(self, path) -> Path:
        from cvtools.io.atomic import atomic_write

        path = Path(path)
        text = json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

        def write(tmp):
            Path(tmp).write_text(text, encoding="utf-8")

        atomic_write(path, write)
        self.path = path
        return path

    def summary(self) -> str:
        """'Mona Lisa, Leonardo da Vinci, c. 1503–1519'."""
        bits = [b for b in (self.title, self.artist, self.year) if b]
        return ", ".join(bits) if bits else "(no painting recorded)"

    # ------------------------------------------------------------------ network
    def load_network(self, device="cpu", verify: bool = True):
        """The transformer network with these weights (fp32, eval mode) on ``device``."""
        sha = self.weights.get("sha256") if verify else None
        shipped = Path(self.weights_path).parent == BUNDLED_WEIGHTS
        record = None if shipped else getattr(self, "path", None)  # the user's record: named in errors
        return load_style_weights(self.weights_path, expected_sha256=sha, device=device, record=record)


def _check_record_fields(d: Dict[str, Any]) -> None:
    """ValueError naming the first field of a record's (known) fields that has a wrong type or
    an out-of-range value."""
    from cvtools.style.limits import check_architecture

    check_name(d["name"])
    for key in ("title", "artist", "year"):
        if key in d and not isinstance(d[key], str):
            if key == "year" and isinstance(d[key], int) and not isinstance(d[key], bool):
                d[key] = str(d[key])  # "year": 1889 is a fair thing to write by hand
            else:
                raise ValueError(f"'{key}' must be text")
    for key in ("provenance", "weights", "network", "recipe", "training", "quality"):
        if key in d and not isinstance(d[key], dict):
            raise ValueError(f"'{key}' must be an object, not {type(d[key]).__name__}")
        if key in d and _depth(d[key]) > 8:
            raise ValueError(f"'{key}' is nested too deeply")
    weights = d.get("weights", {})
    if "file" in weights:
        check_name(weights["file"], "weights file name")
    sha = weights.get("sha256")
    if sha is not None and not (isinstance(sha, str) and re.fullmatch(r"[0-9a-fA-F]{64}", sha)):
        raise ValueError("'weights.sha256' must be 64 hexadecimal digits")
    network = d.get("network", {})
    if "width" in network or "residual_blocks" in network:
        check_architecture(network.get("width", 0.5), network.get("residual_blocks", 5))


def _depth(obj, limit: int = 32) -> int:
    """How deeply lists and objects nest in ``obj`` (stops counting past ``limit``)."""
    if limit <= 0 or not isinstance(obj, (dict, list)):
        return 0
    items = obj.values() if isinstance(obj, dict) else obj
    return 1 + max((_depth(v, limit - 1) for v in items), default=0)


def read_record(path) -> StyleRecord:
    path = Path(path)
    where = safe_path(path)
    try:
        size = path.stat().st_size
        if size > MAX_RECORD_BYTES:
            raise WeightsError(f"{where}: not a style record ({size:,} bytes; records are a few KB)")
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WeightsError(f"{where}: no such style record") from None
    except IsADirectoryError:
        raise WeightsError(f"{where}: is a directory, not a style record") from None
    except RecursionError:
        raise WeightsError(f"{where}: not a style record (JSON nested too deeply)") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else f"{type(exc).__name__}: {exc}"
        raise WeightsError(f"{where}: not a readable style record ({reason})") from None
    if not isinstance(data, dict):
        raise WeightsError(f"{where}: not a style record (not a JSON object)")
    if path.parent == BUNDLED_RECORDS:
        return StyleRecord.from_dict(data, path=path, weights_dir=BUNDLED_WEIGHTS)
    record = StyleRecord.from_dict(data, path=path, weights_dir=path.parent)  # its fields checked
    record.weights_dir = _weights_dir(path, record.weights.get("file"))
    return record


def _weights_dir(path: Path, name: Optional[str]) -> Path:
    """The folder a record's weights file ``name`` is in: beside the record, or else, where the
    file is there, the ``weights/`` folder beside the record's own (a project's ``styles/`` and
    ``weights/``, as cvtools keeps its bundled ones). Beside it when neither has the file, so
    that a missing file is named where train-style writes it."""
    if name and not (path.parent / name).exists():
        sibling = Path(os.path.normpath(path.parent / os.pardir)) / "weights"
        if (sibling / name).is_file():
            return sibling
    return path.parent


def bundled_records() -> List[StyleRecord]:
    """Every bundled style, sorted by name."""
    if not BUNDLED_RECORDS.is_dir():
        return []
    return [read_record(p) for p in sorted(BUNDLED_RECORDS.glob("*.json"))]


def bundled_names() -> List[str]:
    return [p.stem for p in sorted(BUNDLED_RECORDS.glob("*.json"))] if BUNDLED_RECORDS.is_dir() else []


def resolve_style(style: Union[str, os.PathLike, StyleRecord]) -> StyleRecord:
    """A bundled style name (any case, when only one name matches), a record (.json), or a
    weights file (.safetensors) → its record. An unknown name is a UsageError that suggests the
    names meant (:func:`unknown_style_message`).

    A weights file with no record beside it gets a minimal record built from its metadata
    (no checksum to verify then: the user's own file is taken as it is).
    """
    if isinstance(style, StyleRecord):
        return style
    text = str(style)
    p = Path(text)
    bare = bare_bundled_name(text)
    if bare is not None:  # before the files: a folder or file named scream must not hide the style
        return read_record(BUNDLED_RECORDS / f"{bare}.json")
    if p.suffix.lower() in (".json", ".safetensors") or os.sep in text or p.exists():
        if p.is_dir():
            raise UsageError(f"{safe_path(p)}: is a directory, not a style; give a style name, a .json record, "
                             "a .safetensors file or a painting's image file")
        if p.suffix.lower() == ".json":
            return read_record(p)
        if not p.exists():
            near = nearby_style_files(text)
            hint = f"; did you mean {safe_path(near[0])}?" if near else ""
            raise WeightsError(f"{safe_path(p)}: no such style file{hint}")
        if p.suffix.lower() == ".ckpt":
            record = p.with_suffix(".json")
            then = ("use its style record " + safe_path(record) if record.exists() else
                    f"the style record {safe_path(record.name)} is written beside it when training "
                    f"finishes (continue training it with train-style `resume` {safe_path(p)})")
            raise UsageError(f"{safe_path(p)}: is a train-style checkpoint, not a style; {then}", param="resume")
        sibling = p.with_suffix(".json")
        if sibling.exists():
            record = read_record(sibling)
            if Path(record.weights.get("file", "")).name == p.name:
                record.weights_dir = p.parent
                return record
        return StyleRecord(name=p.stem, weights={"file": p.name}, weights_dir=p.parent)
    raise UsageError(unknown_style_message(text, bundled_names()))


def bare_bundled_name(text) -> Optional[str]:
    """The bundled style a bare --style value names (no path separator, no extension: ``mona``,
    ``Scream``), else None. A bare name is the bundled style even when a file or folder of that
    name is in the current folder (last run's ``-o scream/`` must not break the same command run
    again); ``./mona`` names the file."""
    text = str(text)
    if not text or "/" in text or os.sep in text or (os.altsep and os.altsep in text) or Path(text).suffix:
        return None
    return bundled_name(text, bundled_names())


def shadowed_file_note(text) -> Optional[str]:
    """A note when a bare bundled name (:func:`bare_bundled_name`) is also the name of a file here,
    which the user may have meant (the bundled style is used); None otherwise."""
    name = bare_bundled_name(text)
    if name is None or not Path(str(text)).is_file():
        return None
    return (f"--style {safe_path(text)}: the bundled style {name} was used, not the file {safe_path(text)} in "
            f"this folder; --style ./{safe_path(text)} uses the file")


def nearby_style_files(text) -> List[str]:
    """Existing files that a --style value without its extension probably meant: ``text`` with a
    style record's, weights' or image's extension (``mystyles/monet`` -> ``mystyles/monet.json``),
    records first."""
    from cvtools.io.discover import IMAGE_EXTENSIONS

    text = str(text)
    if not text or Path(text).suffix.lower() in STYLE_FILE_SUFFIXES + tuple(IMAGE_EXTENSIONS):
        return []
    endings = (".json", ".safetensors") + tuple(sorted(IMAGE_EXTENSIONS))
    found = [text + e for e in endings if Path(text + e).is_file()]
    if text + ".json" in found:  # the record names its weights: one suggestion for the pair
        found = [f for f in found if not f.endswith(".safetensors")]
    return found


def bundled_name(text: str, names: Sequence[str]) -> Optional[str]:
    """The bundled style ``text`` names: exactly, else ignoring case when only one name matches
    (``Scream`` is ``scream``); None when it names none."""
    if text in names:
        return text
    folded = [n for n in names if n.lower() == text.lower()]
    return folded[0] if len(folded) == 1 else None


def style_suggestions(text: str, names: Sequence[str], limit: int = 3) -> List[str]:
    """Bundled names the user may have meant by ``text``: those it begins (``starry`` →
    starry_night), then the closest spellings (``sream`` → scream), ignoring case."""
    from difflib import get_close_matches

    low = text.lower()
    by_lower = {n.lower(): n for n in names}
    prefixed = [n for n in names if low and n.lower().startswith(low)]
    close = [by_lower[m] for m in get_close_matches(low, list(by_lower), n=limit)]
    return list(dict.fromkeys(prefixed + close))[:limit]


def unknown_style_message(text: str, names: Sequence[str]) -> str:
    """One line for a --style that names no bundled style, with what was probably meant."""
    guesses = list(dict.fromkeys(nearby_style_files(text) + style_suggestions(text, names)))[:3]  # files first
    if guesses:
        quoted = [repr(g) for g in guesses]
        options = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"
        return f"unknown style {safe_path(repr(text))}; did you mean {options}? (cvtools styles lists them)"
    hint = ", ".join(names) if names else "none are installed"
    return (f"unknown style {safe_path(repr(text))}; bundled styles: {hint} (or give a .safetensors/.json "
            "path, or a painting's image file)")


# ---------------------------------------------------------------------------- --style values (no torch)

#: The shortest side a painting may have. The deepest style layers of the loss networks
#: (EfficientNet-Lite0 blocks.7, Lite1 blocks.10) see the picture in 16-pixel cells: below 32
#: pixels a painting covers fewer than 2×2 of them, so its Gram matrices there hold no texture,
#: only a blur of a few upscaled pixels; and a one-pixel painting has no colour covariance at
#: all (the optimiser's colour transfer then fails on every photo, which it would be blamed on).
MIN_PAINTING_SIDE = 32
#: --style values with these endings are trained styles (records, weights, checkpoints).
STYLE_FILE_SUFFIXES = (".json", ".safetensors", ".ckpt")


def is_painting(text: str) -> bool:
    """Whether a --style value (its weight split off) names a painting: an image file name
    (painting.jpg), or an existing file that is not a style's own (painting.avif)."""
    from cvtools.io.discover import IMAGE_EXTENSIONS

    if bare_bundled_name(text) is not None:  # ``mona`` is the bundled style even beside a file named mona
        return False
    p = Path(text)
    suffix = p.suffix.lower()
    return suffix in IMAGE_EXTENSIONS or (suffix not in STYLE_FILE_SUFFIXES and p.is_file())


def parse_style_spec(text) -> Tuple[str, float]:
    """``painting.jpg`` → (painting.jpg, 1.0); ``painting.jpg:0.7`` → (painting.jpg, 0.7).

    The weight is split off only when what follows the last colon is a number, so paths with
    colons in them still work (``C:/art/a.jpg``), and an existing file is always taken whole.
    A UsageError naming the value: a weight that is not a positive finite number, and a
    non-number after a painting's name (``b.jpg:abc``)."""
    text = str(text)
    head, sep, tail = text.rpartition(":")
    if not (sep and head) or Path(text).exists():
        return text, 1.0
    try:
        weight = float(tail)
    except ValueError:
        if is_painting(head):
            raise UsageError(f"{safe_path(text)}: the weight {safe_path(repr(tail))} is not a number") from None
        return text, 1.0
    if not math.isfinite(weight) or weight <= 0:
        raise UsageError(f"{safe_path(text)}: {_weight_problem(weight, tail)}")
    return head, weight


def _weight_problem(value: float, given) -> str:
    """Why a style's weight is refused: 1e400 is a positive number to its writer, and reads as
    infinity, so a non-finite weight is told it must be finite."""
    finite = "" if math.isfinite(value) else " finite"
    return f"a style's weight must be a positive{finite} number, not {safe_path(str(given))}"


def normalized_weights(weights: Sequence[float]) -> List[float]:
    """Style (painting) weights scaled to sum to 1; each must be positive and finite (UsageError). Divided
    by the largest first, so huge weights (1e308 each) cannot overflow the sum to infinity."""
    values = []
    for w in weights:
        try:
            value = float(w)
        except (TypeError, ValueError):
            value = math.nan
        if not math.isfinite(value) or value <= 0:
            raise UsageError(_weight_problem(value, w))
        values.append(value)
    if not values:
        raise UsageError("no painting given")
    top = max(values)
    scaled = [w / top for w in values]
    total = sum(scaled)
    return [w / total for w in scaled]


def check_painting_size(width: int, height: int) -> None:
    """ValueError (the reason, callers name the painting) when a painting is too small to measure."""
    if min(width, height) < MIN_PAINTING_SIDE:
        raise ValueError(f"the painting is only {width}x{height} pixels; a painting needs at least "
                         f"{MIN_PAINTING_SIDE} on its shorter side (its style is measured in 16-pixel cells)")


def load_painting(path, max_pixels: int = -1):
    """A painting file as 8-bit RGB (PIL), read with every check of :func:`cvtools.io.decode.load_image`
    (greyscale, 16-bit, CMYK, palettes and ICC profiles converted; an animation's first frame; its
    ``max_pixels``); transparent areas are laid on white, as a page shows them (the colours hidden
    under them are often black and not part of the picture). Too small, unreadable: an ImageError
    naming it."""
    from PIL import Image

    from cvtools.errors import ImageError
    from cvtools.io.decode import load_image

    image = load_image(path, max_pixels=max_pixels)
    try:
        check_painting_size(*image.rgb.size)
    except ValueError as exc:
        raise ImageError(path, str(exc)) from None
    if image.alpha is None:
        return image.rgb
    return Image.composite(image.rgb, Image.new("RGB", image.rgb.size, "white"), image.alpha)


# ---------------------------------------------------------------------------- weights files


def save_style_weights(net, path, name: str = "") -> str:
    """Write the network's weights as fp16 safetensors with its shape in the metadata; returns
    the file's SHA-256. (fp16 halves the file; the stylized images do not change visibly:
    tests/test_style.py bounds the difference.)"""
    from safetensors.torch import save_file

    from cvtools.io.atomic import atomic_write
    from cvtools.weights import sha256_file

    state = {k: v.detach().to("cpu").half().contiguous() for k, v in net.state_dict().items()}
    meta = {FORMAT_KEY: FORMAT_VERSION, "width": repr(float(net.width)),
            "residual_blocks": str(int(net.residual_blocks)), "name": name}
    path = Path(path)
    atomic_write(path, lambda tmp: save_file(state, tmp, metadata=meta))
    return sha256_file(path)


def load_style_weights(path, expected_sha256: Optional[str] = None, device="cpu", record=None):
    """A TransformerNet from a style weights file; anything else is a one-line WeightsError.

    The order matters for untrusted files: the checksum, then the header alone (metadata and
    tensor shapes, no tensor read), the declared architecture against its bounds, every shape
    against that architecture, and only then the tensors and the network.
    """
    import torch

    from cvtools.style.network import TransformerNet, check_architecture, parameter_shapes
    from cvtools.weights import load_state_dict_file, read_safetensors_header, verify_sha256

    path = Path(path)
    where = safe_path(path)
    if path.suffix.lower() == ".ckpt":
        resolve_style(path)  # says what a checkpoint is and which file to use instead
    if path.suffix != ".safetensors":
        raise WeightsError(f"{where}: style weights must be a .safetensors file")
    if expected_sha256:
        verify_sha256(path, expected_sha256, record=record)
    header = read_safetensors_header(path)
    meta = header.get("__metadata__", {})
    if meta.get(FORMAT_KEY) != FORMAT_VERSION:
        raise WeightsError(f"{where}: not a cvtools style weights file (no '{FORMAT_KEY}' metadata); "
                           "train one with `cvtools train-style`")
    try:
        width = float(meta["width"])
        blocks = int(meta["residual_blocks"])
        expected = parameter_shapes(*check_architecture(width, blocks))
    except (KeyError, ValueError) as exc:
        raise WeightsError(f"{where}: its metadata declares no usable network ({_reason(exc)})") from None
    shapes = {k: tuple(v["shape"]) for k, v in header.items() if k != "__metadata__"}
    problem = state_shape_problem(shapes, expected)
    if problem:
        raise WeightsError(f"{where}: weights do not fit the style network of width {width:g} with "
                           f"{blocks} residual blocks ({problem})")
    state = load_state_dict_file(path)  # readability, NaN/inf
    try:
        net = TransformerNet(width=width, residual_blocks=blocks)
        net.load_state_dict({k: v.float() for k, v in state.items()})
    except (ValueError, RuntimeError) as exc:
        raise WeightsError(f"{where}: weights do not fit the style network ({_reason(exc)})") from None
    bad = [k for k, v in net.state_dict().items() if not torch.isfinite(v).all()]
    if bad:
        raise WeightsError(f"{where}: weights hold NaN or infinite values ({bad[0]})")
    return net.eval().to(device)


def state_shape_problem(shapes: Dict[str, tuple], expected: Dict[str, tuple]) -> Optional[str]:
    """None when ``shapes`` (name → shape) is exactly ``expected``, else what differs first."""
    missing = [k for k in expected if k not in shapes]
    extra = [k for k in shapes if k not in expected]
    if missing:
        return f"{len(missing)} tensors missing, e.g. {missing[0]!r}"
    if extra:
        return f"{len(extra)} unexpected tensors, e.g. {safe_path(repr(extra[0]))}"
    for k, shape in expected.items():
        if tuple(shapes[k]) != tuple(shape):
            return f"{k!r} is {list(shapes[k])}, expected {list(shape)}"
    return None


def _reason(exc: Exception) -> str:
    from cvtools.errors import first_line

    return first_line(exc, 160)
