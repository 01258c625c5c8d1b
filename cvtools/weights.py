"""Safe weight files: SHA-256 pinning and loading that never unpickles code.

- A file is recognised by its content, not its name: safetensors (8-byte header length, then a
  JSON header), a PyTorch zip checkpoint, or a legacy PyTorch pickle; anything else is refused
  as foreign before a loader sees it.
- PyTorch files are read with ``weights_only=True``: a pickle that names any Python callable
  (``os.system``, a class of some project) is refused, nothing is executed.
- What loads must be a dict of tensors (optionally under ``"state_dict"``) of floating or integer
  values with no NaN or infinity.
- Every failure is a :class:`~cvtools.errors.WeightsError` with a one-line message naming the file.
"""

from __future__ import annotations

import hashlib
import json
import re
import stat
import warnings
from pathlib import Path
from typing import Dict, Optional

from cvtools.errors import WeightsError, first_line, safe_path


def sha256_file(path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _check_readable(path: Path, what: str = "weights file") -> None:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise WeightsError(f"{safe_path(path)}: no such {what}") from None
    except OSError as exc:
        raise WeightsError(f"{safe_path(path)}: cannot read the {what} ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise WeightsError(f"{safe_path(path)}: is a directory, not a {what}")
    if not stat.S_ISREG(st.st_mode):
        raise WeightsError(f"{safe_path(path)}: not a regular file")


def verify_sha256(path, expected: str, record=None) -> None:
    """``path``'s SHA-256 is ``expected``, else a one-line WeightsError: for a file cvtools ships,
    "reinstall it"; for one a ``record`` of the user's names (train-style writes both), which."""
    path = Path(path)
    if not path.exists():
        raise WeightsError(f"{safe_path(record) + ': its ' if record else safe_path(path) + ': '}weights file "
                           f"{safe_path(path) + ' ' if record else ''}is missing")
    _check_readable(path)
    try:
        actual = sha256_file(path)
    except OSError as exc:
        raise WeightsError(f"{safe_path(path)}: cannot read the weights file ({exc.strerror or exc})") from None
    if actual != expected.lower():
        why = ("the file is truncated, damaged or not the one cvtools ships; reinstall it" if record is None else
               f"the file is truncated or damaged, or {safe_path(record)} was written for other weights")
        raise WeightsError(f"{safe_path(path)}: checksum mismatch (sha256 {actual[:12]}…, expected {expected[:12]}…); "
                           f"{why}")


def sniff_weights_format(path) -> str:
    """'safetensors', 'zip' (torch.save), 'pickle' (legacy torch.save) or 'unknown', by content."""
    with open(path, "rb") as f:
        head = f.read(16)
        if len(head) >= 9:
            n = int.from_bytes(head[:8], "little")
            size = Path(path).stat().st_size
            if 2 <= n <= min(size - 8, 100 << 20) and head[8:9] == b"{":
                return "safetensors"
    if head[:4] == b"PK\x03\x04":
        return "zip"
    if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
        return "pickle"
    return "unknown"


def sniffed_format(path: Path, what: str) -> str:
    """:func:`sniff_weights_format` of a file the caller has checked is readable, with an empty
    or unreadable file as a one-line WeightsError naming ``what`` ("weights file", "model file")."""
    if path.stat().st_size == 0:
        raise WeightsError(f"{safe_path(path)}: empty {what}")
    try:
        return sniff_weights_format(path)
    except OSError as exc:
        raise WeightsError(f"{safe_path(path)}: cannot read the {what} ({exc.strerror or exc})") from None


def read_safetensors_header(path) -> Dict:
    """A safetensors file's header ({name: {"dtype", "shape", "data_offsets"}, "__metadata__":
    {...}}) without reading any tensor, checked like :func:`load_state_dict_file` checks it:
    callers can compare shapes and metadata against what they expect before loading anything."""
    path = Path(path)
    _check_readable(path)
    if sniff_weights_format(path) != "safetensors":
        raise WeightsError(f"{safe_path(path)}: not a safetensors file (damaged, or another kind of file)")
    return _check_safetensors_header(path)


def _check_safetensors_header(path: Path) -> Dict:
    """The header must be JSON whose tensors fit inside the file (a truncated or tampered file
    fails here with a clear message instead of deep inside the loader); returns it."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        raw = f.read(n)
    if len(raw) < n:
        raise WeightsError(f"{safe_path(path)}: truncated safetensors file (header cut short)")
    try:
        header = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise WeightsError(f"{safe_path(path)}: damaged safetensors file (its header is not valid JSON)") from None
    if not isinstance(header, dict):
        raise WeightsError(f"{safe_path(path)}: damaged safetensors file (header is not a table)")
    end = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            end = max(end, int(info["data_offsets"][1]))
            if not all(isinstance(d, int) and 0 <= d for d in info["shape"]):
                raise ValueError
        except (KeyError, TypeError, ValueError, IndexError):
            raise WeightsError(f"{safe_path(path)}: damaged safetensors file (entry {safe_path(repr(name))})") from None
    if 8 + n + end > size:
        raise WeightsError(
            f"{safe_path(path)}: truncated safetensors file ({size} bytes, its header needs {8 + n + end})")
    meta = header.get("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise WeightsError(f"{safe_path(path)}: damaged safetensors file (its metadata is not a table of text)")
    return header


def check_torch_zip(path) -> None:
    """A PyTorch zip checkpoint must hold only uncompressed entries (``torch.save`` never
    compresses) whose sizes fit inside the file: then nothing that loads is larger than the file.
    A deflated entry would let a 200 KB file unpack into a 200 MB tensor (measured), or
    gigabytes."""
    import zipfile

    path = Path(path)
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError):
        raise WeightsError(f"{safe_path(path)}: truncated or damaged PyTorch checkpoint "
                           "(its zip archive cannot be read)") from None
    packed = [i.filename for i in infos if i.compress_type != zipfile.ZIP_STORED]
    if packed:
        raise WeightsError(f"{safe_path(path)}: not a PyTorch checkpoint as torch.save writes it (compressed "
                           f"entry {safe_path(repr(packed[0]))}); refused, as it could unpack to any size")
    total, size = sum(i.file_size for i in infos), path.stat().st_size
    if total > size:
        raise WeightsError(f"{safe_path(path)}: damaged PyTorch checkpoint (its entries claim {total:,} bytes, "
                           f"the file has {size:,})")


def _unpickling_reason(exc: Exception) -> str:
    text = str(exc)
    m = re.search(r"unsupported GLOBAL ([\w.]+)", text) or re.search(r"GLOBAL ([\w.]+)", text)
    what = f" ({m.group(1)})" if m else ""
    return (f"refused: the file asks to create Python objects{what} beyond plain tensors, and "
            "loading it could run code; cvtools loads only state dicts of tensors (save one with "
            "torch.save(model.state_dict(), path) or as .safetensors)")


def load_state_dict_file(path, expected_sha256: Optional[str] = None) -> Dict:
    """Load tensors from a .safetensors file or a PyTorch checkpoint with ``weights_only=True``.

    A wrong checksum, a truncated file, a foreign file or a pickle that asks for code gives a
    WeightsError; nothing from the file is ever executed.
    """
    import torch

    path = Path(path)
    _check_readable(path)
    if expected_sha256:
        verify_sha256(path, expected_sha256)
    kind = sniffed_format(path, "weights file")
    if kind == "unknown":
        if path.suffix.lower() == ".safetensors":
            raise WeightsError(f"{safe_path(path)}: not a safetensors file (damaged, or another kind of file)")
        raise WeightsError(f"{safe_path(path)}: not a weights file (expected .safetensors or a PyTorch "
                           "state dict saved with torch.save)")
    if kind == "safetensors":
        from safetensors.torch import load_file

        _check_safetensors_header(path)
        try:
            obj = load_file(str(path))
        except Exception as exc:
            raise WeightsError(f"{safe_path(path)}: not a readable safetensors file ({_short(exc)})") from None
    else:
        if kind == "zip":
            check_torch_zip(path)
        try:
            with warnings.catch_warnings():  # a crafted pickle can make torch warn over many lines
                warnings.simplefilter("ignore")
                obj = torch.load(path, map_location="cpu", weights_only=True)
        except MemoryError:
            raise WeightsError(f"{safe_path(path)}: too large to load in the memory available") from None
        except Exception as exc:
            import pickle

            if isinstance(exc, pickle.UnpicklingError) and ("GLOBAL" in str(exc) or "Weights only" in str(exc)):
                raise WeightsError(f"{safe_path(path)}: {_unpickling_reason(exc)}") from None
            if kind == "zip" and ("central directory" in str(exc) or "PytorchStreamReader" in str(exc)):
                raise WeightsError(f"{safe_path(path)}: truncated or damaged PyTorch checkpoint "
                                   "(its zip archive cannot be read)") from None
            hint = " (truncated or damaged)" if kind == "zip" else ""
            raise WeightsError(
                f"{safe_path(path)}: not a loadable weights file{hint} ({_short(exc)}); "
                "only plain state dicts are accepted"
            ) from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if isinstance(obj, dict) and isinstance(obj.get("format"), str) and obj["format"].startswith("cvtools-train-style"):
        raise WeightsError(f"{safe_path(path)}: is a train-style checkpoint (continue it with train-style "
                           "`resume`); the trained style is the .json/.safetensors beside it", param="resume")
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{safe_path(path)}: holds no state dict of tensors")
    for name, t in obj.items():
        if t.is_floating_point() or t.is_complex():
            if not bool(torch.isfinite(t).all()):
                raise WeightsError(f"{safe_path(path)}: tensor {name!r} has NaN or infinite values; "
                                   "the file is damaged")
    return obj


def _short(exc: Exception) -> str:
    return first_line(exc, 160)
