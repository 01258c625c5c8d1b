"""What a user waits for: whole commands, cold, each in a fresh process (``cvtools bench --cold``).

Each row runs ``python -m cvtools ...`` as a user would, on photos made here (a sample photo
scaled to 1920×1080, or a folder of 12 photos), and splits the wall time into phases from the
marks the command records (:mod:`cvtools.timings`):

- imports: interpreter start-up and every import up to loading the model;
- device: creating the CUDA context (0 on the CPU);
- model: building and loading the network (weights read, folded, moved to the device);
- first result: decoding the photo and computing it, up to the first write;
- write: encoding and writing the first output (with its marker);
- exit: everything after it up to the process's end (for one photo: interpreter and CUDA
  shutdown).

For folders the phases cover the whole run, so "first result" and "write" are the first photo's
and the rest lands in "exit"; the folder rows compare 12 photos of 12 different sizes with 12 of one
size, the case where per-shape costs (cuDNN plans, CUDA graph captures) show.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

PHASES = ("imports", "device", "model", "first result", "write", "exit")

#: 12 photo sizes a folder of phone and camera pictures might hold (long side 1024-2048)
MIXED_SIZES = [(1920, 1080), (1080, 1920), (1600, 1200), (1200, 1600), (2048, 1536), (1536, 2048),
               (1280, 960), (1024, 768), (1440, 1080), (2000, 1125), (1334, 750), (1800, 1200)]


@dataclass
class ColdRow:
    command: str
    total_s: float
    phases: Dict[str, float] = field(default_factory=dict)
    note: str = ""

    def to_json(self):
        return {"command": self.command, "total_s": round(self.total_s, 3),
                "phases_s": {k: round(v, 3) for k, v in self.phases.items()}, "note": self.note}


def _photo(path: Path, size, seed: int = 0) -> Path:
    from PIL import Image

    from cvtools import SAMPLES_DIR as samples

    names = sorted(p for p in samples.glob("*.jpg"))
    if names:
        im = Image.open(names[seed % len(names)]).convert("RGB")
    else:  # an installed copy without the samples folder: a smooth random picture
        import numpy as np

        rng = np.random.default_rng(seed)
        im = Image.fromarray(rng.integers(0, 255, (9, 16, 3), dtype=np.uint8))
    im.resize(size, Image.BICUBIC).save(path, quality=92)
    return path


def _run(args: List[str], device: str, workdir: Path) -> ColdRow:
    timings = workdir / f"timings_{time.monotonic_ns()}.json"
    env = dict(os.environ, CVTOOLS_TIMINGS=str(timings), CVTOOLS_TIMINGS_T0=repr(time.time()))
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "cvtools", *args, "--device", device, "-q"], env=env,
                       capture_output=True, text=True, cwd=workdir)
    total = time.perf_counter() - t0
    command = "cvtools " + " ".join(a if a.startswith("-") or "/" not in a else Path(a).name for a in args)
    if r.returncode != 0:
        return ColdRow(command, total, note="failed: " + (r.stderr.strip().splitlines() or ["?"])[-1][:200])
    marks = json.loads(timings.read_text()) if timings.exists() else {}
    points = [marks.get("imports"), marks.get("device"), marks.get("model"), marks.get("first_write"),
              marks.get("first_written"), total]
    phases, last = {}, 0.0
    for name, t in zip(PHASES, points):
        if t is None:
            continue
        phases[name] = max(0.0, t - last)
        last = t
    return ColdRow(command, total, phases)


def cold_suite(device: str = "auto", progress=None, folders: bool = True) -> List[ColdRow]:
    """Whole commands on one 1920×1080 photo (a bundled style and a painting of the user's own,
dream, Grad-CAM, classify), then 12-photo folders (mixed vs same size)."""
    rows: List[ColdRow] = []
    with tempfile.TemporaryDirectory(prefix="cvtools-cold-") as tmp:
        tmp = Path(tmp)
        photo = _photo(tmp / "photo.jpg", (1920, 1080))
        painting = _photo(tmp / "painting.jpg", (640, 480), seed=1)  # another sample as the user's own painting
        one = [
            ["stylize", str(photo), "--style", "mona", "-o", str(tmp / "out_stylize.jpg")],
            ["stylize", str(photo), "--style", str(painting), "-o", str(tmp / "out_painting.jpg")],
            ["dream", str(photo), "-o", str(tmp / "out_dream.jpg")],
            ["visualize", "gradcam", str(photo), "-o", str(tmp / "out_gradcam.jpg")],
            ["classify", str(photo)],
        ]
        for args in one:
            if progress:
                progress(" ".join(a for a in args[:2] if "/" not in a))
            rows.append(_run(args, device, tmp))
        if folders:
            same, mixed = tmp / "same", tmp / "mixed"
            same.mkdir()
            mixed.mkdir()
            for i, size in enumerate(MIXED_SIZES):
                _photo(same / f"p{i:02d}.jpg", (1920, 1080), seed=i)
                _photo(mixed / f"p{i:02d}.jpg", size, seed=i)
            for cmd, extra in (("stylize", ["--style", "mona"]), ("dream", [])):
                for folder in (same, mixed):
                    if progress:
                        progress(f"{cmd} {folder.name} folder")
                    row = _run([cmd, str(folder), *extra, "-o", str(tmp / f"out_{cmd}_{folder.name}") + "/"],
                               device, tmp)
                    row.note = (row.note + " " if row.note else "") + (
                        "12 photos, 12 sizes" if folder is mixed else "12 photos, 1920x1080")
                    rows.append(row)
    return rows


def format_cold(rows: List[ColdRow], device_name: Optional[str] = None) -> str:
    head = "| command | whole command (s) | " + " | ".join(PHASES) + " | note |"
    lines = ([f"Cold whole commands on {device_name}"] if device_name else []) + [
        head, "|" + "---|" * (len(PHASES) + 3)]
    for r in rows:
        cells = " | ".join(f"{r.phases[p]:.2f}" if p in r.phases else "" for p in PHASES)
        lines.append(f"| `{r.command}` | {r.total_s:.2f} | {cells} | {r.note} |")
    return "\n".join(lines)
