"""Decoding photos in worker processes (issue 31): Pillow's decoders hold the GIL for part of
each call, so on a GPU host a folder's loader threads share one interpreter with the main
thread's device loop (1080p JPEGs on a 16-core host: 507 img/s on 14 threads, 927 on 14
processes; benchmarks/folder/README.md).

>>> pool = DecodePool(7)
>>> with pool.decode("a.jpg", max_pixels=None, size=None, enlarge=False) as photo:
...     pixels = photo.rgb.copy()      # H×W×3 uint8, a view of shared memory until the with ends
>>> pool.close()

A worker runs what a loader thread runs (:func:`decode_resized`: ``load_image`` and
``resize_long_side``) and writes the RGB pixels (then the alpha, if any) into a shared memory
block; the parent reads them in place and copies what it keeps (into pinned memory for a GPU).
The parent creates, names and unlinks every block: one per worker, reused from photo to photo
(a new block per photo cost ~6 ms of page faults and unlinking per 1080p photo, measured), grown
when a photo is larger, unlinked when its worker ends or dies and at :meth:`DecodePool.close`.

Workers are fresh interpreters (``python -c``, as multiprocessing's "spawn" starts them; never a
fork: the parent may hold a CUDA context) that import Pillow, numpy and two cvtools modules, not
torch. They are not multiprocessing's spawn children because those run the parent's main script
again first (the ``cvtools`` executable imports the CLI; a user's script that calls
``stylize_files`` without a ``__main__`` guard would run itself in every worker); they talk over
multiprocessing's pipes and share its tracker of shared memory.

Failures: a file that fails raises in the parent what the thread path raises (an
:class:`~cvtools.errors.ImageError` with the same text). A worker that dies fails its file with
:data:`DIED` and is replaced; a pool whose workers cannot start raises :class:`PoolUnavailable`
(the caller decodes in its own thread instead). Blocks are unlinked on every path: when their
worker fails, dies or is interrupted, and at :meth:`DecodePool.close`; a program killed outright
leaves them to multiprocessing's tracker of shared memory, which unlinks them when it ends.
"""

from __future__ import annotations

import itertools
import os
import queue
import threading
from typing import Optional

import numpy as np

#: ``CVTOOLS_DECODE_PROCESSES``: worker processes that decode a folder's photos (0: the loader
#: threads decode, as before; unset: :func:`decode_processes` decides).
PROCESSES_ENV = "CVTOOLS_DECODE_PROCESSES"
#: Only hosts with at least this many CPUs decode in processes by default: below it the loader
#: threads and the writers already take the cores a pool would use.
MIN_CPUS = 8
#: Only folders of at least this many photos decode in processes by default: a pool's start-up
#: (spawn + imports, ~0.2 s of one core per worker, measured in benchmarks/folder/README.md)
#: must be paid back by the photos' faster decoding.
MIN_PHOTOS = 64
#: What a file whose decoding process died says (the process's end, e.g. "killed by SIGKILL").
DIED = "cannot decode image (the decoding process ended: {how}); the other files go on"
#: A worker's block is kept for its next photo up to this size (a 12-megapixel photo's 36 MB
#: fits): reusing it spares the kernel's page faults of a new block per photo (~6 ms per 1080p
#: photo, measured), a larger one is unlinked after its photo.
KEEP_BYTES = 64 << 20
#: Seconds a worker waits to be told to stop before it is terminated at close.
_STOP_WAIT = 2.0


#: Whether a GPU host decodes big folders in processes without being asked. Off until the
#: whole-folder rate has been measured there against the loader threads
#: (benchmarks/folder/decode_pool_rate.py, benchmarks/plans/issue31_gpu.md); the rule below is
#: what it will follow. ``CVTOOLS_DECODE_PROCESSES=N`` turns it on now.
AUTO_PROCESSES = False


class PoolUnavailable(RuntimeError):
    """The worker processes could not start (or keep dying before serving): decode in threads."""


def decode_processes(on_gpu: bool, photos: int, cpus: Optional[int] = None, auto: Optional[bool] = None) -> int:
    """Worker processes for decoding a folder: ``CVTOOLS_DECODE_PROCESSES`` when set (any
    device), else, when the network runs on a GPU, the host has :data:`MIN_CPUS` or more and the
    folder has :data:`MIN_PHOTOS` or more photos, as many as the loader threads would be
    (:func:`cvtools.batch.default_io_threads`); else 0 (the loader threads decode). ``auto``
    (None: :data:`AUTO_PROCESSES`): whether that rule applies at all without the variable."""
    from cvtools.batch import _cpu_count, default_io_threads

    text = os.environ.get(PROCESSES_ENV, "").strip()
    if text:
        try:
            return max(0, int(text))
        except ValueError:
            from cvtools.errors import UsageError

            raise UsageError(f"{PROCESSES_ENV}={text!r} is not a number of processes") from None
    cpus = _cpu_count() if cpus is None else max(1, int(cpus))
    if not (AUTO_PROCESSES if auto is None else auto) or not on_gpu or cpus < MIN_CPUS or photos < MIN_PHOTOS:
        return 0
    return default_io_threads(on_gpu=True, cpus=cpus)


def decode_resized(path, max_pixels, size, enlarge):
    """(RGB, alpha or None): what a loader thread decodes for stylize, and what a worker runs."""
    from cvtools.io.decode import load_image
    from cvtools.ops import resize_long_side

    image = load_image(path, max_pixels=max_pixels)
    if enlarge and size:
        _check_enlarged(path, image.rgb.size, size, max_pixels)
    return resize_long_side(image.rgb, size, enlarge=enlarge), image.alpha


def _check_enlarged(path, wh, size: int, max_pixels) -> None:
    """``--enlarge`` makes pixels the file never had: the decoded-pixel limit holds for the
    enlarged size too (``--size 100000 --enlarge`` would ask for tens of gigabytes)."""
    from cvtools.errors import ImageError
    from cvtools.io.decode import _pixels, max_pixels_from_env

    limit = max_pixels_from_env() if max_pixels == -1 else max_pixels
    w, h = wh
    scale = size / max(w, h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    if limit and limit > 0 and scale > 1 and nw * nh > limit:
        raise ImageError(path, f"--size {size} would make it {nw}x{nh} ({_pixels(nw * nh)}), over the "
                               f"{_pixels(limit)} limit; pass --max-pixels to raise it", param="max_pixels")


class Decoded:
    """One decoded photo in its worker's shared block (a context manager: at its end the worker
    may write the next photo there): ``rgb`` H×W×3 and ``alpha`` (H'×W' or None) uint8 arrays
    viewing the block; copy what you keep."""

    def __init__(self, block, rgb_shape, alpha_shape, release):
        import numpy as np

        self._release = release
        n = rgb_shape[0] * rgb_shape[1] * 3
        self.rgb = np.ndarray(rgb_shape, dtype=np.uint8, buffer=block.buf, offset=0)
        self.alpha = None if alpha_shape is None else np.ndarray(alpha_shape, dtype=np.uint8, buffer=block.buf,
                                                                 offset=n)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.rgb = self.alpha = None  # the views go before the block can
        self._release()


class _Worker:
    """One worker process (a fresh interpreter: :data:`_WORKER_CODE`) and the parent's ends of
    its two pipes (requests in, answers out)."""

    def __init__(self, tracker_fd: int):
        import json
        import subprocess
        import sys
        from multiprocessing.connection import Connection

        request_r, request_w = os.pipe()
        answer_r, answer_w = os.pipe()
        try:
            # A new session: a Ctrl-C in the terminal reaches the parent only, which decides what
            # stops (its loaders finish the photos under way, then close() ends the workers).
            self.process = subprocess.Popen(
                [sys.executable, "-c", _WORKER_CODE, str(request_r), str(answer_w), str(tracker_fd),
                 json.dumps(sys.path)],
                pass_fds=[fd for fd in (request_r, answer_w, tracker_fd) if fd >= 0],
                stdin=subprocess.DEVNULL, start_new_session=True, env={**_WORKER_MALLOC, **os.environ})
        except BaseException:
            for fd in (request_r, request_w, answer_r, answer_w):
                os.close(fd)
            raise
        os.close(request_r)  # the parent keeps no copy of the worker's ends: its death is an EOF here
        os.close(answer_w)
        self.requests = Connection(request_w, readable=False)
        self.answers = Connection(answer_r, writable=False)
        self.answered = False  # a death before the first answer may be the start-up's, not the file's
        self.block = None  # its shared block (the parent's: created, grown and unlinked here)

    def ask(self, request):
        """Send ``request``, wait for the answer (the GIL is released while waiting)."""
        self.requests.send(request)
        return self.answers.recv()

    def block_for(self, nbytes: int, name: str):
        """Its block, replaced by a new one named ``name`` when smaller than ``nbytes``."""
        from multiprocessing import shared_memory

        if self.block is None or self.block.size < nbytes:
            self.drop_block()
            self.block = shared_memory.SharedMemory(name=name, create=True, size=max(1, nbytes))
        return self.block

    def drop_block(self):
        block, self.block = self.block, None
        if block is not None:
            _close_and_unlink(block)

    def how_it_ended(self) -> str:
        import subprocess

        try:
            code = self.process.wait(1.0)
        except subprocess.TimeoutExpired:
            return "no answer, still running"
        if code < 0:
            import signal

            try:
                return f"killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exit status {code}"

    def stop(self):
        """Ask the worker to end (it ends on EOF too); killed if it does not."""
        self.tell_to_stop()
        self.wait_or_kill()

    def tell_to_stop(self):
        try:
            self.requests.send(None)
        except (OSError, ValueError):
            pass
        self.requests.close()

    def wait_or_kill(self):
        import subprocess

        try:
            self.process.wait(_STOP_WAIT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.answers.close()
        self.drop_block()  # the worker is gone: nothing maps it but us


#: glibc's malloc in a worker: a photo's buffers up to 32 MiB (a 1080p image is 8 MiB) come from
#: the heap and stay there for the next photo instead of being mapped and unmapped each time.
#: Measured on 1080p JPEGs in a fresh process (2-core VM): 20 ms of CPU and ~5,500 page faults
#: per photo by default, 7.3 ms and none with these; a worker keeps at most ~128 MiB it no longer
#: uses. Where the variables are set already, theirs stay (other C libraries ignore them).
_WORKER_MALLOC = {"MALLOC_MMAP_THRESHOLD_": str(32 << 20), "MALLOC_TRIM_THRESHOLD_": str(128 << 20)}
#: What a worker runs: the parent's import path, then :func:`_serve` on the pipes named by
#: ``sys.argv`` (request fd, answer fd, the resource tracker's fd or -1, the path as JSON).
_WORKER_CODE = ("import json, sys; sys.path[:] = json.loads(sys.argv[4]); "
                "from cvtools.io.decode_pool import _serve; _serve(*map(int, sys.argv[1:4]))")


class DecodePool:
    """``processes`` decoding workers, started at once (see the module's docstring). Thread-safe:
    each :meth:`decode` takes an idle worker until its :class:`Decoded` ends, so at most
    ``processes`` photos decode (or wait to be copied out) at a time."""

    def __init__(self, processes: int):
        self.processes = max(1, int(processes))
        self._idle: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._workers: list = []
        self._names = itertools.count()
        self._prefix = f"cvtools-{os.getpid()}-{id(self):x}-"
        self.closed = False
        try:
            self._tracker_fd = _resource_tracker_fd()
            for _ in range(self.processes):
                self._add_worker()
        except Exception as exc:  # no processes on this system, or no room for them
            self.close()
            raise PoolUnavailable(f"decoding processes could not start ({exc})") from None

    def _add_worker(self):
        worker = _Worker(self._tracker_fd)
        with self._lock:
            self._workers.append(worker)
        self._idle.put(worker)

    def decode(self, path, max_pixels, size, enlarge) -> Decoded:
        """The photo at ``path`` decoded (and resized) by a worker, as :func:`decode_resized` would
        (``max_pixels``: None or a number, never -1: the caller reads the environment). Raises
        what the thread path raises for the file, :data:`DIED` as an ImageError when its worker
        died, :class:`PoolUnavailable` when the workers cannot run. Use the result in a
        ``with``: until its end the worker is the caller's."""
        for fresh_deaths in range(2):  # a worker that dies before any answer may not have started: once more
            worker = self._idle_worker()
            try:
                shapes = self._decode_on(worker, (str(path), max_pixels, size, enlarge))
                break
            except (EOFError, OSError):  # the worker died: a new one takes its place
                self._replace(worker, path, retry=not worker.answered and fresh_deaths == 0)
            except BaseException:  # interrupted while waiting: the worker may still write
                self._retire(worker)
                raise
        if shapes[0] != "ok":
            self._idle.put(worker)
            _raise(shapes)
        return Decoded(worker.block, shapes[1], shapes[2], release=lambda: self._release(worker))

    def _decode_on(self, worker, request):
        """Decode on ``worker``: its answer, the pixels in its block when the answer is "ok"."""
        answer = worker.ask(("decode",) + request)
        worker.answered = True
        if answer[0] != "ok":
            return answer
        nbytes = sum(int(np.prod(shape)) for shape in answer[1:] if shape is not None)
        block = worker.block_for(nbytes, f"{self._prefix}{next(self._names)}")
        if worker.ask(("write", block.name)) != "written":
            raise OSError("a decoding process did not write its photo")
        return answer

    def _release(self, worker):
        """The caller is done with ``worker``'s block: the worker takes the next photo."""
        if worker.block is not None and worker.block.size > KEEP_BYTES:
            worker.drop_block()  # a huge photo's block is not kept for the next ones
        self._idle.put(worker)

    def _idle_worker(self) -> _Worker:
        """A worker that waits for a request (raises :class:`PoolUnavailable` once closed)."""
        while True:
            try:
                worker = self._idle.get(timeout=0.25)
            except queue.Empty:
                worker = None
            if self.closed:
                if worker is not None:
                    self._idle.put(worker)
                raise PoolUnavailable("the decoding processes were stopped")
            if worker is not None:
                return worker

    def _replace(self, worker, path, retry: bool):
        """After ``worker`` died on ``path``: a new worker in its place; then ``retry`` (its first
        request: it may have died starting) or fail the file (:data:`DIED`). Two deaths in a row
        before any answer: :class:`PoolUnavailable` (the workers cannot run here)."""
        from cvtools.errors import ImageError

        how = worker.how_it_ended()
        self._retire(worker)
        if self.closed or not (worker.answered or retry):
            raise PoolUnavailable(f"decoding processes end before answering ({how})")
        try:
            self._add_worker()
        except Exception as exc:
            raise PoolUnavailable(f"a decoding process could not start ({exc})") from None
        if not retry:
            raise ImageError(path, DIED.format(how=how))

    def _retire(self, worker):
        """Stop ``worker`` (killed if it does not end) and unlink its block."""
        with self._lock:
            if worker in self._workers:
                self._workers.remove(worker)
        worker.stop()

    def worker_modules(self) -> list:
        """The modules a worker has imported (what a test checks: no torch)."""
        worker = self._idle_worker()
        try:
            return worker.ask(("modules",))
        finally:
            self._idle.put(worker)

    def close(self):
        """Stop every worker and unlink every block. Idempotent."""
        self.closed = True
        with self._lock:
            workers, self._workers = list(self._workers), []
        for worker in workers:  # all told first, then waited for: they end together
            worker.tell_to_stop()
        for worker in workers:
            worker.wait_or_kill()


def _raise(answer):
    """Raise the error a worker answered for its file, as the thread path raises it."""
    kind = answer[0]
    if kind == "image_error":
        from cvtools.errors import ImageError

        _, path, reason, params = answer
        raise ImageError(path, reason, param=params or None)
    if kind == "exception":
        raise answer[1]
    raise RuntimeError(answer[1])  # an exception that does not survive pickling: its type and text


def _close_and_unlink(block):
    block.close()
    try:
        block.unlink()
    except FileNotFoundError:
        pass


def _resource_tracker_fd() -> int:
    """The fd of this process's shared memory tracker (started if need be), for the workers to
    share, as multiprocessing's own children do: a block a worker created and nobody unlinked
    (the whole program killed) is unlinked by the tracker when the last of them ends. -1 where
    there is none (not POSIX)."""
    try:
        from multiprocessing import resource_tracker

        resource_tracker.ensure_running()
        return resource_tracker.getfd()
    except (ImportError, AttributeError, OSError):
        return -1


# ----------------------------------------------------------------------------- in the worker


def _serve(request_fd: int, answer_fd: int, tracker_fd: int):
    """A worker's loop: answer each request until told to stop (None) or the parent is gone:
    ("decode", path, ...) -> the shapes (the pixels kept), ("write", block name) -> "written"
    (the pixels in the parent's block), ("modules",) -> its imported modules."""
    from multiprocessing.connection import Connection

    if tracker_fd >= 0:  # register blocks with the parent's tracker, as a multiprocessing child does
        from multiprocessing import resource_tracker

        resource_tracker._resource_tracker._fd = tracker_fd
    requests, answers = Connection(request_fd, writable=False), Connection(answer_fd, readable=False)
    import cvtools.io.decode  # noqa: F401  (imported while the parent sends the first request)
    import cvtools.ops  # noqa: F401

    worker = _Decoder()
    while True:
        try:
            request = requests.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        answers.send(getattr(worker, request[0])(*request[1:]))


class _Decoder:
    """A worker's state: the last photo decoded, until written; the parent's block, mapped."""

    def __init__(self):
        self.pixels = ()
        self.block = None

    def decode(self, path, max_pixels, size, enlarge):
        """("ok", rgb shape, alpha shape or None), or the failure as the parent re-raises it."""
        from cvtools.errors import ImageError

        self.pixels = ()
        try:
            rgb, alpha = decode_resized(path, max_pixels, size, enlarge)
            rgb = np.asarray(rgb, dtype=np.uint8)
            alpha = None if alpha is None else np.asarray(alpha, dtype=np.uint8)
        except ImageError as exc:
            return "image_error", exc.path, exc.reason, exc.params
        except Exception as exc:
            return _portable(exc)
        self.pixels = (rgb,) if alpha is None else (rgb, alpha)
        return "ok", rgb.shape, None if alpha is None else alpha.shape

    def write(self, name):
        """The last photo's pixels (RGB, then alpha) into the parent's block ``name``."""
        from multiprocessing import shared_memory

        if self.block is None or self.block.name != name:
            if self.block is not None:
                self.block.close()
            self.block = shared_memory.SharedMemory(name=name)  # the parent's: it unlinks it
        offset = 0
        for pixels in self.pixels:
            np.ndarray(pixels.shape, dtype=np.uint8, buffer=self.block.buf, offset=offset)[...] = pixels
            offset += pixels.nbytes
        self.pixels = ()
        return "written"

    def modules(self):
        import sys

        return sorted(sys.modules)


def _portable(exc):
    """An exception for the parent: itself when it survives pickling as the same type and text,
    else its type's name and text (the one-line message the thread path would give)."""
    import pickle

    try:
        again = pickle.loads(pickle.dumps(exc))
        if type(again) is type(exc) and str(again) == str(exc):
            return "exception", again
    except Exception:
        pass
    from cvtools.errors import first_line

    return "text", f"{type(exc).__name__}: {first_line(exc, 200)}"
