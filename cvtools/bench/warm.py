"""`cvtools bench --warm`: compile the style network for the common photo and video-frame sizes
on this device, into the machine's compile cache (:mod:`cvtools.compile_cache`), and measure
what the cache gives a later process: its first compiled call, and the steady speed eager and
compiled.

Each size is compiled in a fresh process (dynamo keeps at most 8 shapes per function in one
process), then loaded from the cache in another fresh one: that second first call is the
``load_s`` the default path weighs before it switches a folder or video to the compiled network.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict, dataclass
from typing import Callable, List, Optional, Sequence, Tuple

#: (width, height) of the photos and video frames warmed by default: 1080p both ways and 12 MP
#: phone photos both ways (batches of 1), and 720p, 1080p and 4K video frames (in the batch a
#: video of that size runs on this device).
PHOTO_SIZES = ((1920, 1080), (1080, 1920), (4032, 3024), (3024, 4032))
VIDEO_SIZES = ((1280, 720), (1920, 1080), (3840, 2160))
#: The network warmed: the bundled styles' (they share one architecture, and the compiled code
#: takes the weights as inputs, so one compile serves all six).
STYLE = "mona"
CHILD_TIMEOUT_S = 1800


@dataclass
class WarmRow:
    what: str  # "photo" or "video frames"
    shape: Tuple[int, ...]  # N, 3, H, W
    compiled_s: Optional[float] = None  # first call in a process with a cold cache (None: it was warm)
    load_s: Optional[float] = None  # first call in a later process, from the cache
    eager_ms: Optional[float] = None  # steady, per call
    compiled_ms: Optional[float] = None
    note: str = ""

    def to_json(self):
        d = asdict(self)
        d["shape"] = list(self.shape)
        return d


@dataclass
class Warmed:
    device: str
    torch: str
    directory: str
    network: str
    precision: str
    rows: List[WarmRow]
    auto: bool  # whether the default path takes the compiled network on this device


def plan_shapes(stylizer, sizes: Optional[Sequence[Tuple[int, int]]] = None) -> List[Tuple[str, Tuple[int, ...], str]]:
    """(what, N×3×H×W shape, note) for each size: a photo (batch 1) and, for the default sizes'
    video frames or any size on a GPU, the batch a video of that size runs (when it is more than
    1). Sizes that would be tiled are listed with a note and not compiled (tiles run eager)."""
    from cvtools.video.process import _default_batch

    if sizes:
        photos, videos = list(sizes), list(sizes)
    else:
        photos, videos = list(PHOTO_SIZES), list(VIDEO_SIZES)
    out, seen = [], set()
    for what, group in (("photo", photos), ("video frames", videos)):
        for w, h in group:
            n = 1 if what == "photo" else _default_batch(stylizer, h, w)
            shape = (n, 3, h, w)
            if shape in seen:
                continue
            seen.add(shape)
            tiled = stylizer.tile_side("auto", h, w) is not None
            out.append((what, shape, "tiled at this size: runs eager, not compiled" if tiled else ""))
    return out


def _child(spec_text: str) -> None:
    """In a fresh process: one compiled first call of ``spec``'s shape (recorded in the
    manifest by the Stylizer's CachedCompile), then steady medians eager and compiled."""
    import time

    import torch

    from cvtools.compile_cache import lookup
    from cvtools.style.stylize import Stylizer

    spec = json.loads(spec_text)
    st = Stylizer(spec["style"], device=spec["device"], compile=True)
    x = torch.rand(*spec["shape"]).to(st.device)
    forward = st._forward
    st.stylize_tensor(x)  # the first call: compiled, or loaded from the cache, and recorded
    entry = lookup(forward.entries(), (forward.network, tuple(spec["shape"]), forward.precision, forward.layout),
                   *forward._ids())

    def median_ms(fn, repeat):
        times = []
        for _ in range(repeat):
            if st.device.type == "cuda":
                torch.cuda.synchronize(st.device)
            t0 = time.perf_counter()
            with torch.inference_mode():
                fn()
            if st.device.type == "cuda":
                torch.cuda.synchronize(st.device)
            times.append((time.perf_counter() - t0) * 1e3)
        return sorted(times)[len(times) // 2]

    result = {"entry": entry.to_json() if entry else None}
    if spec.get("steady"):
        repeat = 10 if st.device.type == "cuda" else 3
        xin = st._to_input(x)
        result["compiled_ms"] = median_ms(lambda: forward.compiled(xin), repeat)
        result["eager_ms"] = median_ms(lambda: st.net(xin), repeat)
    print("CVTOOLS-WARM " + json.dumps(result), flush=True)


def _run_child(spec) -> dict:
    cmd = [sys.executable, "-c", "import sys; from cvtools.bench.warm import _child; _child(sys.argv[1])",
           json.dumps(spec)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("CVTOOLS-WARM "):
            return json.loads(line[len("CVTOOLS-WARM "):])
    from cvtools.errors import one_line

    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    raise RuntimeError(one_line(lines[-1] if lines else f"exit status {proc.returncode}", 200))


def warm(device: str = "auto", sizes: Optional[Sequence[Tuple[int, int]]] = None,
         progress: Optional[Callable[[str], None]] = None) -> Warmed:
    """Compile :data:`STYLE`'s network for each shape of :func:`plan_shapes` on ``device`` with
    the default precision and layout, each in a fresh process, then load it from the cache in
    another and time the steady call both ways."""
    import torch

    from cvtools.bench import device_name
    from cvtools.compile_cache import activate, auto_compiles_on, manifest_dir
    from cvtools.style.stylize import Stylizer

    st = Stylizer(STYLE, device=device, compile=False)
    activate(st.device)
    where = manifest_dir(st.device)
    rows = []
    for what, shape, note in plan_shapes(st, sizes):
        row = WarmRow(what, shape, note=note)
        rows.append(row)
        if note:
            continue
        spec = {"style": STYLE, "device": str(st.device), "shape": list(shape)}
        try:
            if progress:
                progress(f"compiling {what} {shape[3]}x{shape[2]}, batch {shape[0]}")
            first = _run_child(spec)
            if progress:
                progress(f"loading it from the cache in a new process, {shape[3]}x{shape[2]}")
            second = _run_child({**spec, "steady": True})
        except (RuntimeError, subprocess.TimeoutExpired, ValueError) as exc:
            row.note = f"failed: {exc}"
            continue
        a, b = first.get("entry") or {}, second.get("entry") or {}
        row.compiled_s = a.get("compiled_s")
        row.load_s = b.get("load_s")
        row.eager_ms, row.compiled_ms = second.get("eager_ms"), second.get("compiled_ms")
    forward = st._forward
    return Warmed(device_name(st.device), torch.__version__, str(where), forward.network, forward.precision, rows,
                  auto_compiles_on(st.device))


def pays_back_after(row: WarmRow) -> Optional[int]:
    """Calls of this shape after which loading the compiled network has paid for itself."""
    if row.load_s is None or row.eager_ms is None or row.compiled_ms is None or row.eager_ms <= row.compiled_ms:
        return None
    return int(row.load_s * 1e3 / (row.eager_ms - row.compiled_ms)) + 1


def format_warm(result: Warmed) -> str:
    lines = [f"device: {result.device}   torch {result.torch}   network {result.network} ({result.precision})",
             f"compile cache: {result.directory}", ""]
    header = (f"{'what':<13} {'shape (N,3,H,W)':<20} {'compile':>8} {'load':>7} {'eager':>10} {'compiled':>10}"
              f" {'pays back after':>16}")
    lines += [header, "-" * len(header)]

    def s(v):
        return f"{v:.1f} s" if v is not None else "-"

    def ms(v):
        return f"{v:.2f} ms" if v is not None else "-"

    for r in result.rows:
        back = pays_back_after(r)
        lines.append(f"{r.what:<13} {','.join(map(str, r.shape)):<20} {s(r.compiled_s):>8} {s(r.load_s):>7} "
                     f"{ms(r.eager_ms):>10} {ms(r.compiled_ms):>10} {(f'{back} calls' if back else '-'):>16}"
                     + (f"  {r.note}" if r.note else ""))
    if not result.auto:
        lines += ["", "On this device stylize runs eager unless --compile is given; the cache serves --compile."]
    return "\n".join(lines)
