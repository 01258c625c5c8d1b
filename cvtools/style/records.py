"""Style records: what a trained style is, where its weights are, and how it was made.

A style is two files side by side: ``NAME.safetensors`` (the transformer network's weights in
fp16, with the network's shape in the file's metadata) and ``NAME.json`` (the record: painting,
artist, year, provenance of the style image, training recipe, seed, final losses, measured
quality, and the weights' SHA-256, checked on every load).

Bundled styles live in ``cvtools/style/bundled/`` (``styles/`` + ``weights/``; the repository
root links to both) so that a plain ``pip install`` ships them inside the package.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from cvtools.errors import UsageError, WeightsError

BUNDLED_DIR = Path(__file__).resolve().parent / "bundled"
BUNDLED_RECORDS = BUNDLED_DIR / "styles"
BUNDLED_WEIGHTS = BUNDLED_DIR / "weights"

#: Marks our safetensors files; a file without it is refused as foreign.
FORMAT_KEY = "cvtools_style"
FORMAT_VERSION = "1"


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
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k not in ("path", "weights_dir")}
        if "name" not in known:
            raise WeightsError(f"{path}: not a style record (no 'name')")
        return cls(**known, path=path, weights_dir=weights_dir)

    def save(self, path) -> Path:
        from cvtools.imageio import atomic_write

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
        return load_style_weights(self.weights_path, expected_sha256=sha, device=device)


def read_record(path) -> StyleRecord:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WeightsError(f"{path}: no such style record") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WeightsError(f"{path}: not a readable style record ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, dict):
        raise WeightsError(f"{path}: not a style record")
    weights_dir = BUNDLED_WEIGHTS if path.parent == BUNDLED_RECORDS else path.parent
    return StyleRecord.from_dict(data, path=path, weights_dir=weights_dir)


def bundled_records() -> List[StyleRecord]:
    """Every bundled style, sorted by name."""
    if not BUNDLED_RECORDS.is_dir():
        return []
    return [read_record(p) for p in sorted(BUNDLED_RECORDS.glob("*.json"))]


def bundled_names() -> List[str]:
    return [p.stem for p in sorted(BUNDLED_RECORDS.glob("*.json"))] if BUNDLED_RECORDS.is_dir() else []


def resolve_style(style: Union[str, os.PathLike, StyleRecord]) -> StyleRecord:
    """A bundled style name, a record (.json), or a weights file (.safetensors) → its record.

    A weights file with no record beside it gets a minimal record built from its metadata
    (no checksum to verify then: the user's own file is taken as it is).
    """
    if isinstance(style, StyleRecord):
        return style
    text = str(style)
    p = Path(text)
    if p.suffix.lower() in (".json", ".safetensors") or os.sep in text or p.exists():
        if p.is_dir():
            raise UsageError(f"{p}: is a directory; give a style name, a .json record or a .safetensors file")
        if p.suffix.lower() == ".json":
            return read_record(p)
        if not p.exists():
            raise WeightsError(f"{p}: no such style file")
        sibling = p.with_suffix(".json")
        if sibling.exists():
            record = read_record(sibling)
            if Path(record.weights.get("file", "")).name == p.name:
                record.weights_dir = p.parent
                return record
        return StyleRecord(name=p.stem, weights={"file": p.name}, weights_dir=p.parent)
    names = bundled_names()
    if text in names:
        return read_record(BUNDLED_RECORDS / f"{text}.json")
    hint = ", ".join(names) if names else "none are installed"
    raise UsageError(f"unknown style {text!r}; bundled styles: {hint} (or give a .safetensors/.json path)")


# ---------------------------------------------------------------------------- weights files


def save_style_weights(net, path, name: str = "") -> str:
    """Write the network's weights as fp16 safetensors with its shape in the metadata; returns
    the file's SHA-256. (fp16 halves the file; the stylized images do not change visibly:
    tests/test_style.py bounds the difference.)"""
    from safetensors.torch import save_file

    from cvtools.imageio import atomic_write
    from cvtools.weights import sha256_file

    state = {k: v.detach().to("cpu").half().contiguous() for k, v in net.state_dict().items()}
    meta = {FORMAT_KEY: FORMAT_VERSION, "width": repr(float(net.width)),
            "residual_blocks": str(int(net.residual_blocks)), "name": name}
    path = Path(path)
    atomic_write(path, lambda tmp: save_file(state, tmp, metadata=meta))
    return sha256_file(path)


def load_style_weights(path, expected_sha256: Optional[str] = None, device="cpu"):
    """A TransformerNet from a style weights file; anything else is a one-line WeightsError."""
    import torch
    from safetensors import safe_open

    from cvtools.style.network import TransformerNet
    from cvtools.weights import load_state_dict_file

    path = Path(path)
    state = load_state_dict_file(path, expected_sha256=expected_sha256)  # checksum, readability
    if path.suffix != ".safetensors":
        raise WeightsError(f"{path}: style weights must be a .safetensors file")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if meta.get(FORMAT_KEY) != FORMAT_VERSION:
        raise WeightsError(f"{path}: not a cvtools style weights file (no '{FORMAT_KEY}' metadata); "
                           "train one with `cvtools train-style`")
    try:
        net = TransformerNet(width=float(meta["width"]), residual_blocks=int(meta["residual_blocks"]))
        net.load_state_dict({k: v.float() for k, v in state.items()})
    except (KeyError, ValueError, RuntimeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise WeightsError(f"{path}: weights do not fit the style network ({first})") from None
    bad = [k for k, v in net.state_dict().items() if not torch.isfinite(v).all()]
    if bad:
        raise WeightsError(f"{path}: weights hold NaN or infinite values ({bad[0]})")
    return net.eval().to(device)
