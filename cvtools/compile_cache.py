"""torch.compile's work, paid once per machine: a persistent compile cache and what it holds.

PyTorch keeps what ``torch.compile`` produced (Inductor's FX graphs and generated code, the
AOTAutograd graphs, Triton kernels and their autotuning results) in ``TORCHINDUCTOR_CACHE_DIR``,
``/tmp/torchinductor_$USER`` unless set: a later process that compiles the same graph for the
same shape loads it instead of compiling it again (measured on a 2-core CPU, the style network
at 512×512: a 37 s first call cold, 2.2 s from the cache; BENCHMARKS.md). cvtools points that
cache, before its first compile, at a folder of its own that survives reboots and is keyed by
the versions and the device (:func:`cache_dir`), so an upgrade or another GPU starts a fresh
one, and keeps a small manifest there (:func:`read_manifest`, :func:`record`) of which
(network, shape, precision, layout) were compiled and what the first call cost: compiling
cold, and loading from the cache.

:class:`CachedCompile` is the forward a network runs through. ``mode=True`` (``--compile``)
compiles every shape and records it; ``mode=False`` stays eager; ``mode=None`` (the default of
:class:`~cvtools.style.stylize.Stylizer`, so of folders and videos) runs eager, except on CUDA
for a shape the manifest records, which switches to the compiled network once the part of the
run's time on that shape the compiled form would have saved (``SAVED_SHARE`` of it) reaches
what loading it costs (the recorded ``load_s``): a short run never waits for the compiler, a
long one gets the fast steady path and loses at most about that much to it. ``cvtools bench --warm`` (:func:`warm`) compiles the common shapes; ``cvtools bench
--clear-cache`` (:func:`clear`) removes the folder.

A ``TORCHINDUCTOR_CACHE_DIR`` set by the user is left alone (the manifest then goes there,
beside the code it describes; clearing leaves their folder). The manifest is untrusted input: a damaged one is ignored with
a note, never a traceback. PyTorch's "mega-cache" (``torch.compiler.save_cache_artifacts``,
2.7+) bundles the same artifacts into bytes to carry to another machine; on one machine the
folder itself is the cache, so cvtools does not use it.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

MANIFEST_NAME = "cvtools-manifest.json"
MANIFEST_VERSION = 1
#: A manifest larger than this is not read (it holds a few hundred short entries at most).
MAX_MANIFEST_BYTES = 1 << 20
#: Entries kept per manifest (the oldest go first).
MAX_ENTRIES = 256
#: The folder's tag (https://bford.info/cachedir/): backup tools skip it, and :func:`clear`
#: removes only a folder that carries it.
TAG_NAME = "CACHEDIR.TAG"
TAG_TEXT = ("Signature: 8a477f597d28d172789f06886806bc55\n"
            "# cvtools' torch.compile cache: `cvtools bench --clear-cache` removes it.\n")
#: Without a measured load time, loading from the cache is guessed to cost this part of the
#: cold compile (measured 2026-12-04: 5.7 of 38.9 s on a 2-core CPU, torch 2.14; 9.7 of 26.6 s on
#: an H200, torch 2.11: the larger share is taken).
LOAD_GUESS = 0.4
#: The part of a run's wall time the compiled network would save: the rent in the ski-rental
#: rule of :meth:`CachedCompile.wants_compiled`. Measured 2026-12-04 on an H200, a folder of
#: 1080p JPEGs in one process: 95 img/s eager, 139 compiled (0.32); decode and encode bound the
#: rest. With the whole wall time as the rent (the first rule), a 512-photo folder switched after
#: 6.7 s and then waited 9.7 s for the load: 2x slower than staying eager (benchmarks/folder/README.md).
SAVED_SHARE = 0.3
PRECISIONS = ("fp32", "fp16", "bf16")
LAYOUTS = ("channels_last", "contiguous")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,199}")
#: The devices where ``mode=None`` may take the compiled path (see :func:`auto_compiles_on`).
AUTO_DEVICE_TYPES = ("cuda",)

Key = Tuple[str, Tuple[int, ...], str, str]  # (network, shape, precision, layout)
Notes = Optional[Callable[[str], None]]


def _say(on_note: Notes, message: str) -> None:
    if on_note is not None:
        on_note(message)


# ---------------------------------------------------------------------------- where


def cache_base() -> Path:
    """cvtools' cache folder: $CVTOOLS_CACHE_DIR, else $XDG_CACHE_HOME/cvtools, else
    ~/.cache/cvtools (as :func:`cvtools.export.cache_dir`, whose exports go in ``onnx/``)."""
    base = os.environ.get("CVTOOLS_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "cvtools")
    return Path(base)


def compile_root() -> Path:
    """The folder holding every compile cache (one per versions and device)."""
    return cache_base() / "compile"


def _slug(text: str, limit: int = 120) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("_.")[:limit] or "unknown"


def _cpu_model() -> str:
    import platform

    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def device_label(device) -> str:
    """The device as the cache tells devices apart: the GPU's name and compute capability, the
    CPU's model."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        return f"{torch.cuda.get_device_name(device)} sm{major}{minor}"
    if device.type == "cpu":
        return f"cpu {_cpu_model()}"
    return device.type


def versions(device) -> str:
    """The software the compiled code depends on: torch, and Triton for CUDA."""
    import torch

    text = f"torch{torch.__version__}"
    if torch.device(device).type == "cuda":
        try:
            from importlib.metadata import version

            text += f"-triton{version('triton')}"
        except Exception:  # not installed, or not as a distribution
            pass
    return text


def cache_dir(device) -> Path:
    """This device's compile cache: ``compile/<versions>-<device>`` under :func:`cache_base`."""
    return compile_root() / _slug(f"{versions(device)}-{device_label(device)}")


def _default_inductor_dir() -> str:
    try:
        from torch._inductor.runtime.cache_dir_utils import default_cache_dir

        return os.path.abspath(default_cache_dir())
    except Exception:  # another torch layout: never treat a set variable as ours
        return ""


def _ours(path: str) -> bool:
    try:
        return Path(path).resolve().is_relative_to(compile_root().resolve())
    except (OSError, ValueError):
        return False


#: The folder :func:`activate` last set (so a later change of $CVTOOLS_CACHE_DIR in the same
#: process does not take it for the user's).
_activated: Optional[str] = None


def user_inductor_dir() -> Optional[str]:
    """``TORCHINDUCTOR_CACHE_DIR`` when the user chose it (set, and neither PyTorch's default
    nor one of cvtools' folders), else None."""
    current = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if not current or current == _activated or os.path.abspath(current) == _default_inductor_dir() \
            or _ours(current):
        return None
    return current


def _make_root() -> None:
    root = compile_root()
    root.mkdir(parents=True, exist_ok=True)
    tag = root / TAG_NAME
    if not tag.exists():
        tag.write_text(TAG_TEXT, encoding="utf-8")


def activate(device) -> Optional[Path]:
    """Point PyTorch's compile cache at :func:`cache_dir` for ``device`` (call before
    ``torch.compile`` runs its first graph). Returns the folder the compiled code goes to: the
    user's own ``TORCHINDUCTOR_CACHE_DIR`` when set, None when cvtools' could not be made
    (a read-only home: PyTorch's default in /tmp is used then). Inductor's FX graph cache and
    AOTAutograd cache stay as configured (on by default); Triton's kernels follow the folder
    (``<dir>/triton/<gpu>``) unless ``TRITON_CACHE_DIR`` is set."""
    user = user_inductor_dir()
    if user is not None:
        return Path(user)
    directory = cache_dir(device)
    try:
        _make_root()
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    global _activated
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = _activated = str(directory)
    # Inductor writes the Triton folder it derived into the environment at its first kernel:
    # one under the default folder or another of ours was not the user's choice.
    triton = os.environ.get("TRITON_CACHE_DIR")
    default = _default_inductor_dir()
    if triton and ((default and os.path.abspath(triton).startswith(default + os.sep)) or _ours(triton)):
        os.environ.pop("TRITON_CACHE_DIR")
    return directory


# ---------------------------------------------------------------------------- the manifest


@dataclass(frozen=True)
class Entry:
    """One compiled (network, shape, precision, layout) on one device and torch version.

    compiled_s: the first call's seconds when it was compiled (None: not measured here).
    load_s: the first call's seconds in a later process, loading it from the cache (the wrapper's
    creation included: it imports the compiler)."""

    network: str
    shape: Tuple[int, ...]
    precision: str
    layout: str
    device: str
    torch: str
    compiled_s: Optional[float] = None
    load_s: Optional[float] = None
    when: str = ""

    @property
    def key(self) -> Key:
        return (self.network, self.shape, self.precision, self.layout)

    def load_cost(self) -> Optional[float]:
        """Seconds the compiled form costs to load: measured, else guessed from the compile."""
        if self.load_s is not None:
            return self.load_s
        return None if self.compiled_s is None else self.compiled_s * LOAD_GUESS

    def to_json(self) -> Dict:
        d = asdict(self)
        d["shape"] = list(self.shape)
        return d


def _seconds(value) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 0 <= value < 1e6:
        raise ValueError("seconds")
    return float(value)


def _text(value, limit: int = 200) -> str:
    if not isinstance(value, str) or len(value) > limit or any(ord(c) < 32 for c in value):
        raise ValueError("text")
    return value


def parse_entry(raw) -> Entry:
    """An :class:`Entry` from its JSON form; ValueError for anything else."""
    if not isinstance(raw, dict):
        raise ValueError("not an object")
    network = _text(raw.get("network"))
    if not _NAME.fullmatch(network):
        raise ValueError("network")
    shape = raw.get("shape")
    if not isinstance(shape, list) or len(shape) != 4 or \
            any(isinstance(s, bool) or not isinstance(s, int) or not 1 <= s <= 65536 for s in shape):
        raise ValueError("shape")
    precision, layout = raw.get("precision"), raw.get("layout")
    if precision not in PRECISIONS or layout not in LAYOUTS:
        raise ValueError("precision or layout")
    return Entry(network, tuple(shape), precision, layout, _text(raw.get("device")), _text(raw.get("torch")),
                 _seconds(raw.get("compiled_s")), _seconds(raw.get("load_s")), _text(raw.get("when", ""), 40))


def manifest_path(directory) -> Path:
    return Path(directory) / MANIFEST_NAME


def manifest_dir(device) -> Path:
    """Where ``device``'s manifest is kept: beside the compiled code it describes (the user's
    ``TORCHINDUCTOR_CACHE_DIR`` when set, else :func:`cache_dir`)."""
    user = user_inductor_dir()
    return Path(user) if user is not None else cache_dir(device)


def read_manifest(directory, on_note: Notes = None) -> Dict[Key, Entry]:
    """The manifest in ``directory`` by key ({} when there is none). A file that is not a
    manifest (unreadable, not JSON, another version, too big) is ignored with one note; entries
    that are not valid are dropped with one note."""
    path = manifest_path(directory)
    try:
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            _say(on_note, f"compile cache: {path} is over {MAX_MANIFEST_BYTES >> 10} KiB, not a manifest; ignored")
            return {}
        with open(path, "rb") as f:
            data = json.loads(f.read(MAX_MANIFEST_BYTES + 1).decode("utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        _say(on_note, f"compile cache: {path} is unreadable ({type(exc).__name__}); ignored "
                    "(`cvtools bench --warm` writes it again)")
        return {}
    if not isinstance(data, dict) or data.get("version") != MANIFEST_VERSION or not isinstance(data.get("entries"), list):
        _say(on_note, f"compile cache: {path} is not a version-{MANIFEST_VERSION} manifest; ignored")
        return {}
    entries, bad = {}, 0
    for raw in data["entries"][:MAX_ENTRIES]:
        try:
            entry = parse_entry(raw)
        except ValueError:
            bad += 1
            continue
        entries[entry.key] = entry
    if bad:
        _say(on_note, f"compile cache: {bad} invalid entr{'y' if bad == 1 else 'ies'} in {path} ignored")
    return entries


def write_manifest(directory, entries: Iterable[Entry]) -> Path:
    """Write the manifest atomically (a temporary file renamed over it), newest entries kept."""
    path = manifest_path(directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    kept = sorted(entries, key=lambda e: e.when)[-MAX_ENTRIES:]
    text = json.dumps({"version": MANIFEST_VERSION, "entries": [e.to_json() for e in kept]}, indent=1)
    fd, tmp = tempfile.mkstemp(prefix=".manifest-", suffix=".part", dir=str(path.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text + "\n")
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


class _Lock:
    """An exclusive lock on the manifest's folder (best effort: none where fcntl is missing)."""

    def __init__(self, directory):
        self.path = Path(directory) / ".manifest.lock"
        self.fd = None

    def __enter__(self):
        try:
            import fcntl

            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except (ImportError, OSError):
            self.fd = None
        return self

    def __exit__(self, *exc):
        if self.fd is not None:
            os.close(self.fd)  # closing releases the lock


def record(directory, network: str, shape: Sequence[int], precision: str, layout: str, device: str, torch: str,
           compiled_s: Optional[float] = None, load_s: Optional[float] = None, on_note: Notes = None) -> Optional[Entry]:
    """Add or update one entry (a measured time replaces the recorded one; one not measured
    keeps it). Returns the entry, or None when the manifest could not be written (a note says
    why; the run goes on)."""
    entry = parse_entry({"network": network, "shape": [int(s) for s in shape], "precision": precision,
                         "layout": layout, "device": device, "torch": torch, "compiled_s": compiled_s,
                         "load_s": load_s, "when": time.strftime("%Y-%m-%dT%H:%M:%S")})
    try:
        Path(directory).mkdir(parents=True, exist_ok=True)
        with _Lock(directory):
            entries = read_manifest(directory)
            old = entries.get(entry.key)
            if old is not None:
                entry = replace(entry, compiled_s=old.compiled_s if compiled_s is None else entry.compiled_s,
                                load_s=old.load_s if load_s is None else entry.load_s)
            entries[entry.key] = entry
            write_manifest(directory, entries.values())
    except OSError as exc:
        _say(on_note, f"compile cache: could not record {network} {list(shape)} in {directory} ({exc.strerror or exc})")
        return None
    return entry


def lookup(entries: Dict[Key, Entry], key: Key, device: str, torch: str) -> Optional[Entry]:
    """The entry for ``key`` made on this device with this torch, else None."""
    entry = entries.get(key)
    if entry is None or entry.device != device or entry.torch != torch:
        return None
    return entry


# ---------------------------------------------------------------------------- clearing


@dataclass
class Cleared:
    removed: List[Path]
    bytes: int
    #: why something was left: a folder without cvtools' tag, the user's TORCHINDUCTOR_CACHE_DIR
    notes: List[str]


def _size(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def clear() -> Cleared:
    """Remove cvtools' compile caches (every version and device) and their manifests. Only a
    folder carrying cvtools' tag is removed (a $CVTOOLS_CACHE_DIR pointed somewhere else is
    never emptied); a user's own ``TORCHINDUCTOR_CACHE_DIR`` (and the manifest cvtools keeps
    in it) is named, not touched."""
    root = compile_root()
    done = Cleared([], 0, [])
    user = user_inductor_dir()
    if user is not None:
        done.notes.append(f"TORCHINDUCTOR_CACHE_DIR={user} is yours: left as it is")
    if root.is_symlink() or (root.exists() and not (root / TAG_NAME).is_file()):
        done.notes.append(f"{root} has no {TAG_NAME} from cvtools: not removed")
        return done
    if not root.exists():
        return done
    done.bytes = _size(root)
    shutil.rmtree(root)
    done.removed.append(root)
    return done


# ---------------------------------------------------------------------------- the forward


def auto_compiles_on(device) -> bool:
    """Whether ``mode=None`` may take the compiled path on this device: CUDA only. On a CPU
    compiled-from-cache is faster steady (2 cores: 110-123 ms against 192 ms at 512×512 bf16)
    but loading it costs 5-6 s (importing the compiler 2.4-4 s, the first call 2.2-2.6 s), and
    the CPU's default for bundled styles is the torch-free ONNX path anyway (BENCHMARKS.md)."""
    return getattr(device, "type", str(device)) in AUTO_DEVICE_TYPES


def network_key(module, name: str) -> str:
    """A name for a network's architecture: ``name`` and a hash of its modules' types and its
    parameters' and buffers' names, shapes and dtypes (not their values: the compiled code takes
    the weights as inputs, so styles of one architecture share it)."""
    import hashlib

    h = hashlib.sha256()
    for sub_name, sub in module.named_modules():
        h.update(f"{sub_name}:{type(sub).__qualname__};".encode())
    for kind, items in (("p", module.named_parameters()), ("b", module.named_buffers())):
        for item_name, t in items:
            h.update(f"{kind}{item_name}:{tuple(t.shape)}:{t.dtype};".encode())
    return f"{_slug(name, 60)}-{h.hexdigest()[:12]}"


def precision_name(dtype) -> str:
    import torch

    return {torch.float16: "fp16", torch.bfloat16: "bf16"}.get(dtype, "fp32")


class CachedCompile:
    """A module's forward, eager or ``torch.compile``'d (static shapes) per input shape, with
    compiled shapes recorded in the device's manifest (see the module docstring for ``mode``).

    network: :func:`network_key`. precision/layout: what the inputs are, for the key. on_note:
    one-line messages (a compile failure under ``mode=None``, which then stays eager). clock:
    for tests."""

    def __init__(self, module, network: str, device, precision: str, layout: str, mode: Optional[bool] = None,
                 on_note: Notes = None, clock: Callable[[], float] = time.perf_counter):
        self.module, self.network, self.device = module, network, device
        self.precision, self.layout, self.mode = precision, layout, mode
        self.on_note, self.clock = on_note, clock
        self.compiled = None
        self._paid: set = set()  # shapes whose first compiled call this process has made
        self._started: Dict[Tuple[int, ...], float] = {}  # mode None: a shape's first eager call
        self._entries: Optional[Dict[Key, Entry]] = None
        self._dir: Optional[Path] = None
        self._id: Optional[Tuple[str, str]] = None

    # what this process knows of the cache, read once
    def _directory(self) -> Optional[Path]:
        if self._dir is None:
            try:
                self._dir = manifest_dir(self.device)
            except Exception:  # no device name to key by
                self._dir = None
        return self._dir

    def entries(self) -> Dict[Key, Entry]:
        if self._entries is None:
            directory = self._directory()
            self._entries = {} if directory is None else read_manifest(directory, self.on_note)
        return self._entries

    def _ids(self) -> Tuple[str, str]:
        if self._id is None:
            import torch

            self._id = (device_label(self.device), torch.__version__)
        return self._id

    def recorded(self, shape: Tuple[int, ...]) -> Optional[Entry]:
        return lookup(self.entries(), (self.network, shape, self.precision, self.layout), *self._ids())

    def _compile(self) -> float:
        """Make the compiled forward (once); returns the seconds it took."""
        if self.compiled is not None:
            return 0.0
        import torch

        t0 = self.clock()
        activate(self.device)
        self.compiled = torch.compile(self.module, dynamic=False)
        return self.clock() - t0

    def wants_compiled(self, shape: Tuple[int, ...]) -> bool:
        """Whether this call of ``shape`` goes through the compiled forward."""
        if self.mode is not None:
            return bool(self.mode)
        if shape in self._paid:
            return True
        if not auto_compiles_on(self.device):
            return False
        entry = self.recorded(shape)
        if entry is None:
            return False
        now = self.clock()
        started = self._started.setdefault(shape, now)
        # ski rental: switch once staying eager has lost as much as the load costs, counting
        # only the part of the time the compiled network would have saved
        return (now - started) * SAVED_SHARE >= (entry.load_cost() or 0.0)

    def compiled_for(self, shape: Tuple[int, ...]) -> bool:
        """Whether this process has made (and paid for) the compiled forward of ``shape``: a
        smaller batch padded to it costs a few images' work instead of a compile."""
        return tuple(int(s) for s in shape) in self._paid

    def canonical(self, x):
        """``x`` with the strides a fresh tensor of its shape and layout has. Compiled code is
        guarded on strides, size-1 dimensions' too: a photo made a batch by ``unsqueeze`` (stride
        3 for its batch dimension) would otherwise compile anew beside the warmed graph."""
        import torch

        if x.dim() != 4:
            return x
        n, c, h, w = x.shape
        if self.layout == "channels_last":
            want, fmt = (c * h * w, 1, w * c, c), torch.channels_last
        else:
            want, fmt = (c * h * w, h * w, w, 1), torch.contiguous_format
        return x if x.stride() == want else x.clone(memory_format=fmt)

    def __call__(self, x):
        shape = tuple(int(s) for s in x.shape)
        if not self.wants_compiled(shape):
            return self.module(x)
        x = self.canonical(x)
        if shape in self._paid:
            return self.compiled(x)
        try:
            return self._first_compiled_call(x, shape)
        except Exception as exc:
            if self.mode:
                raise
            from cvtools.errors import one_line

            self.mode = False  # auto: eager from now on, this run
            _say(self.on_note, f"compiled network failed ({one_line(exc, 160)}); running eager")
            return self.module(x)

    def _sync(self) -> None:
        if getattr(self.device, "type", None) == "cuda":
            import torch

            torch.cuda.synchronize(self.device)

    def _first_compiled_call(self, x, shape):
        self._sync()
        t0 = self.clock()
        self._compile()  # the first shape's call pays for importing the compiler: counted
        out = self.compiled(x)
        self._sync()
        seconds = self.clock() - t0
        self._paid.add(shape)
        directory = self._directory()
        if directory is not None:
            known = self.recorded(shape) is not None
            device, torch_version = self._ids()
            entry = record(directory, self.network, shape, self.precision, self.layout, device, torch_version,
                           compiled_s=None if known else seconds, load_s=seconds if known else None,
                           on_note=self.on_note)
            if entry is not None:
                self.entries()[entry.key] = entry
        return out
