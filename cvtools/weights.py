"""Safe weight files: SHA-256 pinning and loading that never unpickles code."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Dict, Optional

from cvtools.errors import WeightsError


def sha256_file(path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def verify_sha256(path, expected: str) -> None:
    path = Path(path)
    if not path.exists():
        raise WeightsError(f"{path}: weights file is missing")
    actual = sha256_file(path)
    if actual != expected:
        raise WeightsError(
            f"{path}: checksum mismatch (sha256 {actual[:12]}…, expected {expected[:12]}…); "
            "the file is truncated, damaged or not the one cvtools ships; reinstall it"
        )


def load_state_dict_file(path, expected_sha256: Optional[str] = None) -> Dict:
    """Load tensors from a .safetensors file or a PyTorch checkpoint with ``weights_only=True``.

    A wrong checksum, a truncated file or a pickle that asks for code gives a WeightsError.
    """
    import torch

    path = Path(path)
    if not path.exists():
        raise WeightsError(f"{path}: no such weights file")
    if expected_sha256:
        verify_sha256(path, expected_sha256)
    if path.stat().st_size == 0:
        raise WeightsError(f"{path}: empty weights file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as exc:
            raise WeightsError(f"{path}: not a readable safetensors file ({_short(exc)})") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(
            f"{path}: not a loadable weights file ({_short(exc)}); only plain state dicts are accepted"
        ) from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{path}: holds no state dict of tensors")
    return obj


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:160]
