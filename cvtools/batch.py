"""Work over many inputs, below the CLI: overlapped stages, grouping into batches, per-input
errors, interruption, sharding under torchrun and the run's summary.

Two layers:

- **Item runners**, for any iterable of items (files, video frames, ...), each yielding one
  :class:`Outcome` per item, in input order, with an exception kept per item instead of raised:

  - :func:`run_stages` overlaps ``load`` (worker threads) / ``compute`` (the calling thread:
    the device work) / ``save`` (worker threads) across items, with bounded look-ahead; with a
    :class:`Grouping`, consecutive loaded items of one key are computed together (a batch);
  - :func:`run_batched` computes prepared items in batches of one key (say, one tensor shape);
  - :func:`prefetch` runs a sequential iterator (a video decoder) one step ahead in a thread.

- **The file runner** :func:`run`: expand the inputs, take this rank's shard under torchrun,
  run a work object over the files, keep going past per-file errors, handle Ctrl-C and
  SIGTERM, and return a :class:`BatchReport` (the union of all ranks' under torchrun). It prints
  nothing: it reports through callbacks (``on_done``, ``on_fail``, ``on_note``, ``progress``);
  ``cvtools.cli.common.run_batch`` wires them to tqdm and the terminal.

The work given to :func:`run` is a :class:`Work`, one of three kinds that say what they need
explicitly (no attribute sniffing): a :class:`PerFileWork` (``fn(path) -> note or None``, one
file after another; a plain function passed to :func:`run` is one), a :class:`StagedWork`
(stages overlapped by :func:`run_stages`) or a :class:`BatchedWork` (batches by
:func:`run_batched`). Each runs itself over the files (:meth:`Work.outcomes`).
"""

from __future__ import annotations

import itertools
import os
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Iterable, Iterator, List, Optional, Sequence, Tuple

__all__ = [
    "Outcome", "Grouping", "run_stages", "run_batched", "prefetch", "Work", "PerFileWork", "StagedWork", "BatchedWork",
    "as_work", "io_threads", "default_io_threads", "BatchReport", "Interrupted", "run", "error_line",
]


# ----------------------------------------------------------------------------- item runners


@dataclass
class Outcome:
    """What became of one item: ``value`` (what the last stage returned) or ``error`` (the
    exception any stage raised for it; the other items go on)."""

    item: Any
    value: Any = None
    error: Optional[BaseException] = None

    @property
    def ok(self) -> bool:
        return self.error is None


class _Failed:
    """A stage's exception, kept until its item's turn to be reported."""

    __slots__ = ("exc",)

    def __init__(self, exc):
        self.exc = exc


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_threads() -> int:
    """Worker threads per pool when nobody says: ``CVTOOLS_IO_THREADS`` if set, else min(4, CPUs)."""
    return io_threads(None)


#: With the device work on a GPU, the most worker threads per pool (loaders, writers) that
#: :func:`default_io_threads` gives on a big host.
GPU_IO_THREADS_MAX = 16


def default_io_threads(on_gpu: bool = False, cpus: Optional[int] = None) -> int:
    """Worker threads per pool when neither ``CVTOOLS_IO_THREADS`` nor the work says: min(4,
    CPUs); when the compute stage runs on a GPU, (CPUs - 2) // 2 each for the loaders and the
    writers, at least that and at most :data:`GPU_IO_THREADS_MAX` (a 16-core host: 7 and 7).
    There a 1080p photo costs the host ~12 ms to decode and ~12 ms to encode against ~3 ms of
    device work (benchmarks/folder/README.md), and Pillow releases the GIL in both, so the
    pools must grow with the cores to keep the device busy; two cores stay for the main
    thread (the device's driver) and the rest of the process. ``cpus``: for tests (default:
    the CPUs this process may run on)."""
    cpus = _cpu_count() if cpus is None else max(1, int(cpus))
    small = min(4, cpus)
    if not on_gpu:
        return small
    return max(small, min(GPU_IO_THREADS_MAX, (cpus - 2) // 2))


def io_threads(work=None) -> int:
    """Worker threads per pool for staged work: ``CVTOOLS_IO_THREADS`` if set, else the work's
    ``threads`` (a :class:`Work`'s; None: not set), else :func:`default_io_threads` (min(4,
    CPUs); more on big hosts for work whose ``on_gpu`` says its compute runs on a GPU). 0
    means serial."""
    env = os.environ.get("CVTOOLS_IO_THREADS", "").strip()
    if env:
        try:
            return max(0, int(env))
        except ValueError:
            from cvtools.errors import UsageError

            raise UsageError(f"CVTOOLS_IO_THREADS={env!r} is not a number of threads") from None
    threads = work.threads if work is not None else None
    if threads is not None:
        return max(0, int(threads))
    return default_io_threads(on_gpu=bool(getattr(work, "on_gpu", False)))


@dataclass
class Grouping:
    """How :func:`run_stages` computes consecutive items together (same-size photos through a
    network as one batch) instead of one at a time.

    ``key(item, loaded) -> None or (key, most)``: None sends the item alone through the stages'
    ``compute``; otherwise the item is computed with the items right after it in input order
    that are loaded, give the same ``key`` and fit in ``most`` (the head's). ``compute(items,
    loadeds) -> [pending, ...]``: one pending per item, handed to ``save`` as ``compute``'s
    would be. A group whose ``compute`` raises is computed again one item at a time through
    the stages' ``compute`` (the reference path: one bad or too large item fails alone, an out
    of memory batch falls back). Both run on the calling thread."""

    key: Callable[[Any, Any], Optional[Tuple[Hashable, int]]]
    compute: Callable[[List[Any], List[Any]], Sequence[Any]]


def run_stages(items: Iterable, load: Optional[Callable[[Any], Any]], compute: Callable[[Any, Any], Any],
               save: Optional[Callable[[Any, Any], Any]] = None, *, prepare: Optional[Callable[[Any], None]] = None,
               threads: Optional[int] = None, save_threads: Optional[int] = None,
               late: Optional[Callable[[Any], None]] = None, group: Optional[Grouping] = None) -> Iterator[Outcome]:
    """Overlap the stages of per-item work; yield one :class:`Outcome` per item, in input order.

    For each item: ``prepare(item)`` (optional; the calling thread, in input order, before its
    load: naming outputs, refusing early), ``a = load(item)`` (a loader thread; None: ``a`` is
    the item), ``b = compute(item, a)`` (the calling thread, in input order: the device work),
    ``c = save(item, b)`` (a writer thread; None: ``c`` is ``b``); the outcome's ``value`` is
    ``c``. An exception in any stage becomes that item's ``error``; later stages are skipped for
    it and the other items go on.

    Memory stays bounded: at most ``threads + 1`` items are loaded (or loading) ahead of the
    computation, and at most ``2 * threads`` computed results wait for a writer; ``items`` is
    read lazily (a generator of video frames works). ``threads``: workers per pool (None:
    :func:`default_threads`); 0 runs every stage on the calling thread, one item after another.
    ``save_threads`` (default ``threads``): 1 makes the saves run one at a time in input order
    (frames into one video encoder).

    ``group`` (a :class:`Grouping`): consecutive items of one key are computed together; once
    an item has a key, the look-ahead grows to ``threads + most`` items and the results waiting
    for a writer to ``writers + most`` (room for one group ahead of the device and one behind
    it). Items without a key run exactly as without ``group``. Serial runs (``threads`` 0)
    compute one item at a time.

    On Ctrl-C or SIGTERM (a ``KeyboardInterrupt``), or when the caller stops iterating: no new
    item starts, queued loads and saves are dropped, those under way finish (so make saves
    atomic), ``late(item)`` is called for each item whose save completed but was not yielded,
    and the interrupt goes on.
    """
    threads = default_threads() if threads is None else max(0, int(threads))
    if threads <= 0:
        yield from _serial_stages(items, load, compute, save, prepare)
        return
    stages = _Stages(items, load, compute, save, prepare, threads, save_threads, group)
    try:
        stages.feed()
        while stages.loads:
            stages.queue_saves(stages.compute_next())
            yield from stages.finished(stages.max_saves)
        yield from stages.finished(0)
    except (KeyboardInterrupt, GeneratorExit):
        stages.shutdown()
        if late is not None:
            stages.report_late(late)
        raise
    finally:
        stages.shutdown()


class _Stages:
    """One threaded run of :func:`run_stages`: the items loaded (or loading) ahead of the device
    (``loads``), the results behind it waiting for a writer or for their turn to be reported
    (``results``, in input order), and the two pools. The stage functions and ``group`` are
    :func:`run_stages`' own; every method runs on the calling thread."""

    def __init__(self, items, load, compute, save, prepare, threads, save_threads, group):
        self.load, self.compute, self.save, self.prepare, self.group = load, compute, save, prepare, group
        self.threads = threads
        self.writers_n = threads if save_threads is None else max(1, int(save_threads))
        self.lookahead = threads + 1  # loaded (or loading) items waiting for the device: bounded memory
        self.max_saves = 2 * self.writers_n  # results waiting for a writer: bounded memory (both grow for a group)
        self.source = iter(items)
        self.exhausted = False
        self.loaders = _NamedPool(threads, "cvtools-load")
        self.writers = _NamedPool(self.writers_n, "cvtools-save")
        self.loads: deque = deque()  # (item, Future of the loaded value | _Failed | (value,) when no load)
        self.results: deque = deque()  # (item, Future of the saved value | _Failed | (value,)), in input order

    def feed(self):
        """Read items and start their loads (after ``prepare``) until the look-ahead is full."""
        while not self.exhausted and len(self.loads) < self.lookahead:
            try:
                item = next(self.source)
            except StopIteration:
                self.exhausted = True
                return
            try:
                if self.prepare is not None:
                    self.prepare(item)
            except Exception as exc:
                self.loads.append((item, _Failed(exc)))
            else:
                self.loads.append((item, self.loaders.submit(self.load, item) if self.load is not None else (item,)))

    def compute_next(self) -> list:
        """Compute the item at the head of ``loads`` (with its group's mates, if any): [(item,
        pending or _Failed), ...] in input order."""
        item, loading = self.loads.popleft()
        self.feed()  # keep the loaders busy while this item is computed
        try:
            if isinstance(loading, _Failed):
                raise loading.exc
            loaded = loading[0] if isinstance(loading, tuple) else loading.result()
            loading = None
            members = self.mates(item, loaded)
            return self.computed(members) if members else [(item, self.compute(item, loaded))]
        except Exception as exc:
            return [(item, _Failed(exc))]

    def mates(self, item, loaded):
        """[(item, loaded), ...]: ``item`` and the loaded items right after it of its group key,
        or None when it goes alone (no key)."""
        group = self.group
        head = group.key(item, loaded) if group is not None else None
        if head is None:
            return None
        key, most = head[0], max(1, int(head[1]))
        if self.lookahead < self.threads + most:  # room for a whole group ahead of the device
            self.lookahead, self.max_saves = self.threads + most, max(self.max_saves, self.writers_n + most)
            self.feed()
        members = [(item, loaded)]
        while len(members) < most and self.loads and not isinstance(self.loads[0][1], _Failed):
            after, loading = self.loads[0]
            try:
                value = loading[0] if isinstance(loading, tuple) else loading.result()
                same = group.key(after, value)
            except Exception:  # reported at its own turn
                break
            if same is None or same[0] != key:
                break
            self.loads.popleft()
            self.feed()
            members.append((after, value))
        return members

    def computed(self, members):
        """(item, pending or _Failed) per member: the group at once, else one by one."""
        try:
            pendings = list(self.group.compute([m[0] for m in members], [m[1] for m in members]))
            if len(pendings) != len(members):
                raise RuntimeError(f"a group's compute returned {len(pendings)} results for {len(members)} items")
            return [(m[0], p) for m, p in zip(members, pendings)]
        except Exception:
            out = []
            for m in members:
                try:
                    out.append((m[0], self.compute(m[0], m[1])))
                except Exception as exc:
                    out.append((m[0], _Failed(exc)))
            return out

    def queue_saves(self, done):
        """Queue ``done`` (:meth:`compute_next`'s) on ``results``: each pending to a writer, a
        failure (or, without ``save``, the value itself) as it is."""
        for one, pending in done:
            if isinstance(pending, _Failed) or self.save is None:
                self.results.append((one, pending if isinstance(pending, _Failed) else (pending,)))
            else:
                self.results.append((one, self.writers.submit(self.save, one, pending)))

    def finished(self, limit) -> Iterator[Outcome]:
        """Outcomes of the head of ``results`` that are done; wait for the head while more than
        ``limit`` results are outstanding."""
        from concurrent.futures import Future

        results = self.results
        while results:
            item, r = results[0]
            if isinstance(r, Future):
                if not r.done() and len(results) <= limit:
                    return
                try:
                    value = r.result()
                except Exception as exc:
                    results.popleft()
                    yield Outcome(item, error=exc)
                else:
                    results.popleft()
                    yield Outcome(item, value)
            elif isinstance(r, _Failed):
                results.popleft()
                yield Outcome(item, error=r.exc)
            else:
                results.popleft()
                yield Outcome(item, r[0])

    def shutdown(self):
        """Drop the queued loads and saves; wait for those under way."""
        for pool in (self.loaders, self.writers):
            pool.close()

    def report_late(self, late):
        """``late(item)`` for each item whose save completed but that was not yielded."""
        from concurrent.futures import Future

        for item, r in self.results:
            if isinstance(r, Future) and r.done() and not r.cancelled() and r.exception() is None:
                late(item)


_pool_numbers = itertools.count(1)


class _NamedPool:
    """A thread pool whose :meth:`close` waits for every task under way, even one taken by a
    thread the pool never recorded: Ctrl-C can land while ``submit`` starts a new worker
    (``Thread.start`` waits for it), after the thread exists and before the pool adds it to the
    threads its shutdown joins. That thread runs its task all the same; a command that ends the
    process right after the interrupt (``cvtools.cli._exit_now``) then cut a save short and left
    its temporary file behind. Its threads are named ``ROLE-N_k``, N unique to the pool, so
    :meth:`close` finds them all by name."""

    def __init__(self, workers: int, role: str):
        from concurrent.futures import ThreadPoolExecutor

        self.prefix = f"{role}-{next(_pool_numbers)}"
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix=self.prefix)

    def submit(self, fn, *args):
        return self.pool.submit(fn, *args)

    def close(self) -> None:
        """Drop the queued tasks; wait for those under way (on every thread of the pool)."""
        import threading

        self.pool.shutdown(wait=True, cancel_futures=True)
        me = threading.current_thread()
        for thread in threading.enumerate():
            if thread is not me and thread.name.startswith(self.prefix + "_"):
                thread.join()  # the shut-down pool's threads end after their task


def _serial_stages(items, load, compute, save, prepare) -> Iterator[Outcome]:
    for item in items:
        try:
            if prepare is not None:
                prepare(item)
            value = compute(item, load(item) if load is not None else item)
            if save is not None:
                value = save(item, value)
        except Exception as exc:
            yield Outcome(item, error=exc)
        else:
            yield Outcome(item, value)


def run_batched(items: Sequence, prepare: Callable[[Any], Any], compute: Callable[[List[Any]], Sequence[Any]],
                finish: Optional[Callable[[Any, Any, Any], Any]] = None, *, batch_size: int,
                key: Optional[Callable[[Any], Hashable]] = None, lookahead: int = 4,
                load: Optional[Callable[[Any], Any]] = None, threads: int = 0) -> Iterator[Outcome]:
    """Compute items in batches of one ``key``; yield one :class:`Outcome` per item, in order.

    ``prepare(item) -> p`` runs ``lookahead * batch_size`` items at a time (in input order); when an
    item's turn comes, it is computed together with up to ``batch_size - 1`` prepared items of
    the same ``key(p)`` (default: ``p["x"].shape``, so a folder of mixed portrait and landscape
    photos still fills its batches): ``compute([p, ...]) -> [r, ...]``, one result per prepared
    item. Then ``finish(item, p, r)`` (default: ``r``) gives the outcome's value. A batch that
    fails (say out of memory) is retried one item at a time, so a bad item fails alone; an
    exception from ``prepare``, ``load`` or ``finish`` fails that item only.

    ``load(p) -> p``: the slow part of preparing (decoding), run on ``threads`` worker threads
    for the whole window at once while ``prepare`` (naming outputs, in input order) and
    ``compute`` stay on this thread; with ``threads`` 0, right after ``prepare``.

    Only ``items`` are ever prepared or computed: under torchrun pass this rank's shard.
    """
    order = list(items)
    key = key or _shape_key
    batch_size = max(1, int(batch_size))
    window = _Window(order, prepare, load, threads, max(1, batch_size * max(1, int(lookahead))))
    ready = {}  # index -> (p, result, or its exception)
    try:
        for i, item in enumerate(order):
            if i not in ready:
                p = window.take(i)
                if isinstance(p, _Failed):
                    yield Outcome(item, error=p.exc)
                    continue
                try:
                    mates = window.mates(i, key(p), key, batch_size)
                except Exception as exc:
                    yield Outcome(item, error=exc)
                    continue
                _compute_batch(compute, [(i, p)] + [(j, window.pop(j)) for j in mates], ready)
            p, r = ready.pop(i)
            if isinstance(r, BaseException):
                yield Outcome(item, error=r)
                continue
            try:
                value = finish(item, p, r) if finish is not None else r
            except Exception as exc:
                yield Outcome(item, error=exc)
            else:
                yield Outcome(item, value)
    finally:
        window.close()


class _Window:
    """:func:`run_batched`'s look-ahead: items prepared in input order ``size`` ahead of the one
    being computed, each loaded on a worker thread (``threads`` > 0) or right away."""

    def __init__(self, order, prepare, load, threads: int, size: int):
        from concurrent.futures import ThreadPoolExecutor

        self.order, self.prepare, self.load, self.size = order, prepare, load, size
        self.items = {}  # index -> p, a Future of it (loading), or the exception preparing it raised
        self.next = 0
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="cvtools-load") \
            if load is not None and threads > 0 else None

    def take(self, i):
        """Item i, prepared and loaded; the window is topped up to ``size`` items past it first
        (with loader threads, loads keep running beside the compute)."""
        while self.next < min(len(self.order), i + self.size):
            try:
                p = self.prepare(self.order[self.next])
                if self.load is not None:
                    p = self.pool.submit(self.load, p) if self.pool is not None else self.load(p)
                self.items[self.next] = p
            except Exception as exc:  # reported when that item's turn comes
                self.items[self.next] = _Failed(exc)
            self.next += 1
        p = self.loaded(i)
        self.items.pop(i)
        return p

    def loaded(self, j):
        """Item j loaded (waiting for its loader)."""
        from concurrent.futures import Future

        q = self.items[j]
        if isinstance(q, Future):
            try:
                q = q.result()
            except Exception as exc:  # reported when that item's turn comes
                q = _Failed(exc)
            self.items[j] = q
        return q

    def mates(self, i, k, key, batch_size: int) -> List[int]:
        """Up to ``batch_size - 1`` waiting items of key ``k`` to compute with item i, in input
        order: each candidate's load is waited for, so the batches are the same whether loads
        run on threads or not (and so are the results, to the last bit, on any device)."""
        mates = []
        for j in sorted(self.items):
            if len(mates) >= batch_size - 1:
                break
            q = self.loaded(j)
            if not isinstance(q, _Failed) and key(q) == k:
                mates.append(j)
        return mates

    def pop(self, j):
        return self.items.pop(j)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)


def _compute_batch(compute, members, ready) -> None:
    """For :func:`run_batched`: compute ``members`` ([(index, p), ...]) as one batch and set
    ``ready[index] = (p, result or its exception)`` for each; a batch that fails is computed
    again one member at a time."""
    try:
        results = compute([p for _, p in members])
        if len(results) != len(members):
            raise RuntimeError(f"compute returned {len(results)} results for {len(members)} items")
    except Exception as exc:
        if len(members) == 1:
            ready[members[0][0]] = (members[0][1], exc)
            return
        for member in members:  # one bad (or too big) item must not sink its batch-mates
            _compute_batch(compute, [member], ready)
        return
    for (i, p), r in zip(members, results):
        ready[i] = (p, r)


def _shape_key(p):
    x = p["x"] if isinstance(p, dict) else p
    return tuple(x.shape)


def prefetch(iterable: Iterable, ahead: int = 2) -> Iterator:
    """Iterate ``iterable`` in a background thread, up to ``ahead`` items in front of the
    consumer, in order (a video decoder keeps decoding while the device works). An exception
    from the iterator is raised at its position; stopping early stops the thread."""
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=max(1, int(ahead)))
    stop = threading.Event()
    end = object()

    def produce():
        try:
            for x in iterable:
                while not stop.is_set():
                    try:
                        q.put((x, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put((end, None))
        except BaseException as exc:  # handed to the consumer
            q.put((end, exc))

    thread = threading.Thread(target=produce, name="cvtools-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            x, exc = q.get()
            if x is end:
                if exc is not None:
                    raise exc
                return
            yield x
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                pass
            thread.join(0.05)


# ----------------------------------------------------------------------------- work over files


class Work:
    """Per-file work that :func:`run` drives: one of :class:`PerFileWork`, :class:`StagedWork` or
    :class:`BatchedWork`, each running itself over the files with :meth:`outcomes`.

    ``extensions``: the file extensions searched for in folders (None: images; a command that
    takes videos too gives both). ``threads``: worker threads per pool for overlapped stages
    (None: :func:`io_threads`' default; :class:`StagedWork` and a :class:`BatchedWork` with ``load``
    have stages to overlap)."""

    extensions: Optional[frozenset] = None
    threads: Optional[int] = None
    #: whether the compute stage runs on a GPU (more I/O threads on big hosts: :func:`io_threads`)
    on_gpu: bool = False

    def workers(self, files: int) -> int:
        """Worker threads per pool for a run over ``files`` files (0: every stage on the calling
        thread, one file after another)."""
        return 0

    def outcomes(self, paths: Sequence, threads: int = 0,
                 late: Optional[Callable[[Any], None]] = None) -> Iterator[Outcome]:
        """One :class:`Outcome` per path, in input order (``threads``: :meth:`workers`; ``late``:
        see :func:`run_stages`)."""
        raise NotImplementedError


@dataclass
class PerFileWork(Work):
    """Per-file work done by one function, one file after another: ``fn(path) -> note or None``
    (a plain function given to :func:`run` becomes one)."""

    fn: Callable[[Any], Optional[str]]
    extensions: Optional[frozenset] = None

    def __call__(self, path):
        return self.fn(path)

    def outcomes(self, paths, threads=0, late=None):
        return run_stages(paths, None, lambda path, _: self.fn(path), threads=0)


@dataclass
class StagedWork(Work):
    """Per-file work in stages, so that :func:`run` overlaps them across files (:func:`run_stages`):
    while the device computes one image, worker threads decode the next ones and encode the
    previous ones (Pillow's decoders and encoders, and file I/O, release the GIL).

    - ``prepare(path)`` (optional): main thread, in input order, before the file is loaded
      (e.g. naming its output with ``output_path_for``, so the checks and the output claims
      happen in input order and a refused file is never decoded);
    - ``load(path) -> item``: a loader thread, a few files ahead of the computation;
    - ``compute(path, item) -> pending``: the main thread (the device work), in input order;
    - ``save(path, pending) -> note or None``: a writer thread; the note is reported, and the
      progress advances, once the file is saved, in input order.

    An exception in any stage fails that file only (reported on one line naming it).
    ``threads``: workers per pool (None: :func:`io_threads`' default, min(4, CPUs), more on big
    hosts when ``on_gpu``: the compute stage runs on a GPU); 0 runs every stage on the main
    thread, one file after another, as does ``CVTOOLS_IO_THREADS=0`` (for debugging).
    ``group`` (a :class:`Grouping`): consecutive files of one key computed together (a batch
    through the network), see :func:`run_stages`.
    """

    load: Callable[[Any], Any]
    compute: Callable[[Any, Any], Any]
    save: Callable[[Any, Any], Optional[str]]
    prepare: Optional[Callable[[Any], None]] = None
    threads: Optional[int] = None
    extensions: Optional[frozenset] = None
    group: Optional[Grouping] = None
    on_gpu: bool = False

    def __call__(self, path, item):
        return self.compute(path, item)

    def workers(self, files):
        threads = io_threads(self)
        return threads if files > 1 else 0

    def outcomes(self, paths, threads=0, late=None):
        return run_stages(paths, self.load, self.compute, self.save, prepare=self.prepare, threads=threads,
                          late=late, group=self.group)


@dataclass
class BatchedWork(Work):
    """Per-file work that computes in batches (:func:`run_batched`): ``prepare(path) -> item``
    (output names, and the decoding unless ``load`` does it: main thread, in input order, a few
    batches ahead), ``load(item) -> item`` (optional: the decoding, on loader threads, so a
    folder's photos decode in parallel while the device computes), ``compute([item, ...]) ->
    [result, ...]`` (the device), ``finish(path, item, result) -> note or None`` (draw and
    write). Items batch together when ``key(item)`` is equal (default: the shape of
    ``item["x"]``)."""

    prepare: Callable[[Any], Any]
    compute: Callable[[List[Any]], Sequence[Any]]
    finish: Callable[[Any, Any, Any], Optional[str]]
    batch_size: int = 8
    key: Optional[Callable[[Any], Hashable]] = None
    lookahead: int = 4
    extensions: Optional[frozenset] = None
    #: ``load(item) -> item``: decoding, on loader threads (see :func:`run_batched`); None: all in ``prepare``
    load: Optional[Callable[[Any], Any]] = None
    threads: Optional[int] = None
    on_gpu: bool = False

    def workers(self, files):
        return io_threads(self) if self.load is not None and files > 1 else 0

    def outcomes(self, paths, threads=0, late=None):
        return run_batched(paths, self.prepare, self.compute, self.finish, batch_size=self.batch_size,
                           key=self.key, lookahead=self.lookahead, load=self.load, threads=threads)


def as_work(work) -> Work:
    """``work`` as a :class:`Work`: a Work as it is, a plain function as a :class:`PerFileWork`."""
    if isinstance(work, Work):
        return work
    if callable(work):
        return PerFileWork(work)
    raise TypeError(f"not a batch work: {type(work).__name__} (a Work, or a function of a path)")


@dataclass
class BatchReport:
    done: List[str] = field(default_factory=list)
    failed: List[str] = field(default_factory=list)
    #: wall-clock span of the loop over the files (model loading is before it): time.time() values
    started: float = 0.0
    ended: float = 0.0
    #: inputs whose output was already there (same command, options and input): not failures
    skipped: List[str] = field(default_factory=list)
    #: files found in folders that are this command's own outputs: left out, not failures
    excluded: List[str] = field(default_factory=list)
    #: inputs of the whole run (files found plus inputs that gave none, e.g. an empty folder)
    total: int = 0
    #: files this process worked on (its shard under torchrun)
    files: int = 0
    #: processes of the run (torchrun's world size) and whether this one speaks for the run
    processes: int = 1
    is_main: bool = True

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def rate_line(self, processes: int = 1) -> str:
        """'N images in T s (R img/s[ on K processes])' for the summary of a folder run; below
        one image a second, 'S s/img' (slow work never reads '0.0 img/s')."""
        seconds = max(1e-9, self.ended - self.started)
        n = len(self.done)
        on = f" on {processes} processes" if processes > 1 else ""
        from cvtools.io.discover import VIDEO_EXTENSIONS

        videos = sum(os.path.splitext(str(d))[1].lower() in VIDEO_EXTENSIONS for d in self.done)
        if videos:  # a video is many frames (its own line gives frames/s): no per-image rate
            images = n - videos
            what = [f"{videos} video{'s' if videos != 1 else ''}"]
            what += [f"{images} image{'s' if images != 1 else ''}"] if images else []
            return f"{' and '.join(what)} in {seconds:.1f} s" + (f" ({on.strip()})" if on else "")
        rate = n / seconds
        speed = f"{seconds / n:.1f} s/img" if n and rate < 1.0 else f"{rate:.1f} img/s"
        return f"{n} image{'s' if n != 1 else ''} in {seconds:.1f} s ({speed}{on})"

    def summary_line(self, processes: int = 1) -> Optional[str]:
        """'done: ...' with the rate, the inputs skipped as already done and the earlier outputs
        left out of the inputs; None when there is nothing to say."""
        parts = [self.rate_line(processes)] if self.done else []
        if self.skipped:
            n = len(self.skipped)
            parts.append(f"skipped {n} already done (same command and options; overwrite=True redoes them)")
        if self.excluded:
            n = len(self.excluded)
            parts.append(f"left out {n} earlier output{'s' if n != 1 else ''} of cvtools found among the "
                         "inputs (name one alone to process it)")
        return f"done: {'; '.join(parts)}" if parts else None

    def closing_lines(self) -> List[str]:
        """What to tell the user when the run ends (nothing for one file, nothing on ranks other
        than 0): failures out of the inputs, and the summary line."""
        if self.processes > 1:
            if not self.is_main:
                return []
            return [f"{len(self.done)} of {self.total - len(self.excluded)} inputs done on {self.processes} processes"
                    + (f", {len(self.failed)} failed" if self.failed else "")
                    + (f", {len(self.skipped)} skipped as already done" if self.skipped else "")
                    + (f", {len(self.excluded)} earlier outputs left out" if self.excluded else "")
                    + (f": {self.rate_line(self.processes)}" if self.done else "")]
        if not self.files:  # no input images: the error said it all
            return []
        lines = []
        total = self.total - len(self.excluded)
        if self.failed and total > 1:
            lines.append(f"{len(self.failed)} of {total} inputs failed")
        summary = self.summary_line()
        if self.files > 1 and summary:
            lines.append(summary)
        return lines


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped :func:`run`: ``report`` holds what was done, ``message`` says
    so in one line (every output written is complete; a re-run continues)."""

    def __init__(self, report: BatchReport, message: str):
        super().__init__(message)
        self.report = report
        self.message = message


class _Terminated(KeyboardInterrupt):
    """SIGTERM during a batch, raised like Ctrl-C so temporary files are cleaned up."""


def _on_sigterm(signum, frame):
    raise _Terminated()


def error_line(path, exc) -> str:
    """``path: message`` on one line (the message alone when it already names the path)."""
    from cvtools.errors import one_line, safe_path

    msg = one_line(str(exc))
    shown = safe_path(path)
    return msg if shown in msg else f"{shown}: {msg}"


def failure_line(path, exc, fatal: Tuple[type, ...] = ()) -> str:
    """The one-line error for one file's exception. Re-raises what must end the whole run (a
    closed pipe, a missing module, any of ``fatal``) and anything that is not an Exception."""
    from cvtools.errors import CvtoolsError, first_line

    if getattr(exc, "ends_batch", False):  # a shared model that failed to build (cvtools.deferred)
        raise exc
    if isinstance(exc, CvtoolsError):
        return error_line(path, exc)
    if isinstance(exc, MemoryError):
        return error_line(path, OUT_OF_MEMORY)
    if not isinstance(exc, Exception) or isinstance(exc, (BrokenPipeError, ImportError) + tuple(fatal)):
        raise exc
    first = first_line(exc, 200)
    if not isinstance(exc, (RuntimeError, OSError)):  # probably a bug: say what kind
        first = f"{type(exc).__name__}: {first}"
    return error_line(path, first)


def _ignore(*args):
    return None


#: What a file that ran out of memory says (the parameters named as the Python API names them;
#: :data:`OUT_OF_MEMORY_PARAMS` lets the command line show them as its options).
OUT_OF_MEMORY = "out of memory; try a smaller `size` or `tile`"
OUT_OF_MEMORY_PARAMS = ("size", "tile")


def leave_out_tool_outputs(paths: Sequence) -> Tuple[list, list]:
    """(inputs, left out): among several inputs, the files cvtools wrote (any command: their
    provenance marker says so) are not inputs, so ``classify photos/`` after ``stylize photos/``
    does not classify the stylized copies. A file named alone is always an input. Reads only
    each file's header (the marker), no decoding."""
    if len(paths) <= 1:
        return list(paths), []
    from cvtools.io.markers import read_marker

    inputs, outputs = [], []
    for p in paths:
        (outputs if read_marker(p) is not None else inputs).append(p)
    return inputs, outputs


def run(inputs: Sequence[str], work, *, provenance=None, outputs=None,
        on_done: Optional[Callable[[str, Optional[str]], None]] = None,
        on_fail: Optional[Callable[[str, str, Optional[BaseException]], None]] = None,
        on_note: Optional[Callable[[str], None]] = None,
        progress: Optional[Callable[[int, int], None]] = None,
        fatal: Tuple[type, ...] = ()) -> BatchReport:
    """Run ``work`` over the files ``inputs`` name (files, folders, glob patterns, or the
    :class:`~cvtools.io.discover.Inputs` a command found already: then not searched again),
    keeping going past per-file errors; return a :class:`BatchReport`.

    ``work``: a :class:`Work` (:class:`PerFileWork`, :class:`StagedWork`, :class:`BatchedWork`)
    or a function ``work(path) -> note or None``.

    Callbacks (all optional, all on the calling thread, in input order):
    ``on_done(path, note)`` per finished file; ``on_fail(path, message, exc)`` per failed file
    (``message`` one line naming the file; ``exc`` None for "no input images"), also for inputs
    that gave no file; ``on_note(message)`` for notes (a renamed output, a skipped file);
    ``progress(finished, total)``: (0, total) before the first file, then after each.

    - An exception from one file fails that file only; those in ``fatal`` (and BrokenPipeError,
      ImportError, anything not an Exception) end the run.
    - Two inputs never write the same output file; finished outputs of the same command and
      options are skipped and counted; this command's own outputs found in folders are left out
      (``outputs``, the run's :class:`~cvtools.io.naming.Outputs` that the work names and writes
      with, started here with the inputs; default: a new one with ``provenance``, the command and
      its options).
    - Under torchrun each rank takes every world_size-th file; every rank returns the union of
      all ranks' reports (``processes`` > 1, ``is_main`` on rank 0).
    - Ctrl-C or SIGTERM raises :class:`Interrupted` (a KeyboardInterrupt) with the report so far:
      the file being written is discarded (writes are atomic), every finished output stays.
    """
    import signal
    import time

    from cvtools.io.naming import Outputs

    report = BatchReport()
    work = as_work(work)
    tally = _Tally(report, on_done or _ignore, on_fail or _ignore, on_note or _ignore, progress or _ignore, fatal)
    planned = _plan(inputs, work, tally)
    if planned is None:
        return report
    paths, found, dist, folders = planned
    threads = work.workers(len(paths))
    old_term = _sigterm_as_interrupt()
    tally.progress(0, len(paths))
    report.started = time.time()
    try:
        if outputs is None:
            outputs = Outputs(provenance)
        outputs.begin(found=found, batch=paths, on_note=tally.on_note, folders=folders)
        tally.take(work.outcomes(paths, threads, late=lambda path: report.done.append(str(path))))
    except KeyboardInterrupt:
        report.ended = time.time()
        in_progress = "those in progress were" if threads else "the one in progress was"
        raise Interrupted(report, f"interrupted after {len(report.done)} of {len(paths)} inputs; every output "
                                  f"written is complete, {in_progress} discarded; run the same command again to "
                                  "continue") from None
    finally:
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)
    report.ended = time.time()
    if dist.enabled:
        return _combine_ranks(report, dist)
    return report


def _plan(inputs, work, tally: "_Tally"):
    """For :func:`run`: this process's files, as (paths, found, dist, folders), or None when there is
    nothing to work on (said through the callbacks). Finds the inputs (unless found already),
    leaves out cvtools' own outputs, takes this rank's shard under torchrun, fills the report's
    counts and fails the inputs that gave no file."""
    from cvtools import distributed
    from cvtools.io.discover import Inputs, find_inputs

    report = tally.report
    if not isinstance(inputs, Inputs):  # a command that looked at its inputs already passes them found
        inputs = find_inputs(inputs, extensions=work.extensions)
    paths, problems, found = list(inputs.paths), list(inputs.problems), inputs.found
    paths, tool_outputs = leave_out_tool_outputs(paths)
    # Under torchrun each rank takes one shard of the inputs; rank 0 speaks for the whole run.
    dist = distributed.init() if distributed.launched_by_torchrun() else distributed.DistInfo()
    all_paths = paths
    report.total = len(all_paths) + len(problems) + len(tool_outputs)
    report.excluded.extend(str(p) for p in tool_outputs)
    if dist.enabled:
        paths = distributed.shard(paths, dist.rank, dist.world_size)
        if not dist.is_main:
            problems = []
    report.files = len(paths)
    for problem in problems:
        tally.on_fail(problem.path, error_line(problem.path, problem), problem)
        report.failed.append(problem.path)
    if not all_paths:
        if tool_outputs:
            tally.on_note(f"every input is an output of cvtools ({len(tool_outputs)} found); name one alone to "
                          "process it")
        elif not problems:
            tally.on_fail("", "no input images", None)
            report.failed.append("")
        return None
    return paths, found, dist, inputs.folders


class _Tally:
    """For :func:`run`: what becomes of each file's outcome, in input order: counted in the
    report, told to the callbacks, the progress advanced (out of ``report.files``)."""

    def __init__(self, report: BatchReport, on_done, on_fail, on_note, progress, fatal):
        self.report = report
        self.on_done, self.on_fail, self.on_note, self.progress, self.fatal = on_done, on_fail, on_note, progress, fatal
        self.finished = 0

    def take(self, outcomes: Iterator[Outcome]) -> None:
        """Tally every outcome; on the way out (an interrupt too), close ``outcomes``: the saves
        under way finish, the rest are dropped."""
        try:
            for outcome in outcomes:
                if outcome.error is None:
                    self.ok(outcome.item, outcome.value)
                else:
                    self.fail(outcome.item, outcome.error)
        finally:
            outcomes.close()

    def advance(self):
        self.finished += 1
        self.progress(self.finished, self.report.files)

    def ok(self, path, note):
        self.report.done.append(str(path))
        self.on_done(str(path), note)
        self.advance()

    def fail(self, path, exc):
        from cvtools.io.naming import OutputSkipped

        report = self.report
        if isinstance(exc, OutputSkipped):  # nothing to do for this input: not a failure
            (report.skipped if exc.kind == "done" else report.excluded).append(str(path))
            if report.files == 1 or exc.kind == "named_like":  # a name alone is a guess: say which file
                self.on_note(error_line(path, exc))
        else:
            message = failure_line(path, exc, self.fatal)  # re-raises what must end the run
            report.failed.append(str(path))
            self.on_fail(str(path), message, exc)
        self.advance()


def _sigterm_as_interrupt():
    """On the main thread, make SIGTERM raise like Ctrl-C (:func:`_on_sigterm`) and return the
    handler it replaces, for :func:`run` to put back; None when it cannot be changed here."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        try:
            return signal.signal(signal.SIGTERM, _on_sigterm)
        except (ValueError, OSError):
            return None
    return None


def _combine_ranks(report: BatchReport, dist) -> BatchReport:
    """Every rank gets the union of all ranks' results (so all exit alike)."""
    from cvtools import distributed

    parts = distributed.gather_objects((report.done, report.failed, report.started, report.ended, report.skipped,
                                        report.excluded))
    return BatchReport([d for p in parts for d in p[0]], [f for p in parts for f in p[1]],
                       min(p[2] for p in parts), max(p[3] for p in parts),
                       [k for p in parts for k in p[4]], [e for p in parts for e in p[5]],
                       total=report.total, files=report.files, processes=dist.world_size, is_main=dist.is_main)
