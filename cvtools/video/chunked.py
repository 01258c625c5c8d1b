"""H.264 encoded as consecutive chunks by several libx264 encoders at once, muxed as one stream.

One libx264 encoder tops out at about 65-95 frames/s at 1080p (superfast, CRF 18, frame threads)
on a 16-core GPU host, which is what held ``cvtools stylize clip.mp4`` back there. x264's frame
threads stop scaling long before 16 cores, but independent encoders do: the frames are cut into
chunks of G frames, each chunk is encoded by an encoder of its own (standalone
``av.CodecContext``, same options, so the same SPS/PPS) on a worker thread (PyAV releases the GIL
inside ``avcodec_send_frame``/``receive_packet``: two encoders on two threads run 1.8× one), and
the packets are muxed into the container's ONE video stream in chunk order. Every chunk starts
with an IDR frame and no frame refers across chunks (each encoder begins afresh), so the file is
a plain single H.264 stream.

Timestamps: x264 gives a chunk's packets ``dts`` consecutive ticks shifted by its B-frame delay
(the first ones before the chunk's first ``pts``). At a constant frame rate the delay is the same
in every chunk, so the chunks' ``dts`` continue one another; :class:`VideoWriter` checks them
while muxing all the same, and switches to its serial encoder for the rest of the clip as soon
as a frame's time is off the frame rate's grid (a variable-rate source).

The writer picks the number of chunks (:func:`plan_chunks`): ``chunks=K`` when asked, else the
environment variable ``CVTOOLS_ENCODE_CHUNKS`` (0 or 1: the serial encoder), else the serial
encoder, until :data:`AUTO_CHUNKS` turns on :func:`default_chunks` (chunked on machines of
:data:`MIN_CORES` cores or more only) once a big host has measured it.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from typing import Callable, List, Optional, Tuple

from cvtools.errors import UsageError

#: The environment variable that sets the number of chunk encoders (0 or 1: one serial encoder).
ENV = "CVTOOLS_ENCODE_CHUNKS"
#: Chunked encoding is the default from this many cores. On 2 cores one encoder with frame threads
#: keeps both busy and chunks only add keyframes (measured: benchmarks/video_encode_chunks.py).
MIN_CORES = 8
#: Whether big hosts chunk without being asked. Off until a 16-core GPU host has measured the gain
#: end to end (benchmarks/plans/issue31_gpu.md): on 2 cores chunks cost 14 % more bytes and
#: 0.4 dB at CRF 18 for no speed, so a file must not grow on a promise. ``CVTOOLS_ENCODE_CHUNKS``
#: or ``chunks=`` turn it on; :func:`default_chunks` is then the rule the measurement will check.
AUTO_CHUNKS = False
#: Cores per chunk encoder by default (each one runs that many frame threads).
CORES_PER_CHUNK = 4
#: Most chunk encoders by default.
MAX_CHUNKS = 8
#: Seconds of video per chunk (each starts with a keyframe: 2 s costs a few percent of bytes
#: against x264's own 250-frame interval, and a player seeks to within 2 s).
CHUNK_SECONDS = 2.0
#: Bytes of yuv420p frames the chunks may hold at once (K chunks being encoded plus the one being
#: filled). 1080p at 2 s × 30 fps is 187 MB a chunk, so 8 chunks fit; 4K is four times that, so
#: there the chunks get shorter, then fewer (see :func:`plan_chunks`).
MAX_BUFFERED_BYTES = 2 * 1024 ** 3


def chunks_from_env() -> Optional[int]:
    """``CVTOOLS_ENCODE_CHUNKS`` as a number of encoders (None when unset; a malformed value is
    a one-line usage error)."""
    text = os.environ.get(ENV, "").strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0 or value > 64:
        raise UsageError(f"{ENV} must be a whole number of encoders from 0 to 64 (0 or 1: one serial encoder), "
                         f"not {text[:40]!r}")
    return value


def default_chunks(cores: Optional[int] = None) -> int:
    """Chunk encoders for a machine of ``cores`` cores: one per :data:`CORES_PER_CHUNK` cores (at
    most :data:`MAX_CHUNKS`) from :data:`MIN_CORES` cores, else 1 (the serial encoder)."""
    cores = cores or os.cpu_count() or 1
    if cores < MIN_CORES:
        return 1
    return max(2, min(MAX_CHUNKS, cores // CORES_PER_CHUNK))


def plan_chunks(requested: Optional[int], width: int, height: int, fps: Fraction,
                chunk_frames: Optional[int] = None, budget: int = MAX_BUFFERED_BYTES) -> Tuple[int, int]:
    """(encoders K, frames per chunk G) for frames of ``width``×``height`` at ``fps``; K ≤ 1 means
    the serial encoder. ``requested``: ``chunks=`` (None: the environment, else the default).
    (K + 1) chunks of G yuv420p frames stay within ``budget`` bytes: G shrinks first, down to
    one second of frames; below that K shrinks, since short chunks cost a keyframe each."""
    k = requested if requested is not None else chunks_from_env()
    k = (default_chunks() if AUTO_CHUNKS else 1) if k is None else int(k)
    if k <= 1:
        return 1, 0
    frame_bytes = width * height * 3 // 2
    g = chunk_frames or max(8, min(250, round(CHUNK_SECONDS * float(fps))))
    if chunk_frames:
        return k, g  # asked for (tests, benchmarks): as given
    shortest = max(8, min(g, round(float(fps))))
    while True:
        fits = budget // ((k + 1) * frame_bytes)
        if fits >= shortest or k <= 2:
            return k, max(1, min(g, fits))
        k -= 1


def encoder_like(template, options: dict, threads: int):
    """A standalone, open libx264 encoder with ``template``'s settings (a stream's codec context:
    size, pixel format, time base, frame rate, flags, colour tags), ``options`` (what the
    template was given: opening it consumes them) and ``threads`` frame threads. The flags carry
    GLOBAL_HEADER, as the container's own encoder has it for mp4/mov/mkv, so the SPS/PPS go to
    ``extradata`` and not into the packets."""
    from cvtools.io.container import av_module

    encoder = av_module().CodecContext.create(template.name, "w")
    encoder.width, encoder.height, encoder.pix_fmt = template.width, template.height, template.pix_fmt
    encoder.time_base = template.time_base
    encoder.framerate = template.framerate
    encoder.options = dict(options)
    for tag in ("colorspace", "color_primaries", "color_trc", "color_range"):
        setattr(encoder, tag, getattr(template, tag))
    encoder.flags = template.flags
    encoder.thread_count = threads
    encoder.thread_type = "AUTO"  # frame threads, as the serial writer
    encoder.open()
    return encoder


class ChunkedEncoder:
    """Frames in, packets out in order: ``add(frame)`` buffers frames (their ``pts`` set) into
    chunks of ``chunk_frames``; a full chunk goes to one of ``chunks`` worker threads, which
    encodes it with an encoder of its own (:func:`encoder_like`); finished chunks' packets go to
    ``mux(packet)`` on the calling thread, in order. At most ``chunks`` chunks are encoded at
    once (``add`` waits for the oldest), so at most ``chunks + 1`` chunks of frames are held.

    ``extradata``: the container stream's SPS/PPS, which every chunk encoder must reproduce."""

    def __init__(self, template, options: dict, chunks: int, chunk_frames: int, threads: int, extradata: bytes,
                 mux: Callable[[object], None]):
        self.template, self.options, self.chunks, self.chunk_frames = template, options, chunks, chunk_frames
        self.threads, self.extradata, self.mux = threads, extradata, mux
        self.buffer: List[object] = []
        self.pending: deque = deque()  # futures of the chunks submitted, in order
        self.stop = threading.Event()
        self.pool = ThreadPoolExecutor(chunks, thread_name_prefix="cvtools-x264")
        self.encoded_chunks = 0

    def add(self, frame) -> None:
        self.buffer.append(frame)
        if len(self.buffer) >= self.chunk_frames:
            self._submit()
        while self.pending and self.pending[0].done():  # mux what is ready, without waiting
            self._mux_oldest()

    def _submit(self) -> None:
        while len(self.pending) >= self.chunks:
            self._mux_oldest()
        frames, self.buffer = self.buffer, []
        self.pending.append(self.pool.submit(self._encode, frames))

    def _encode(self, frames) -> list:
        encoder = encoder_like(self.template, self.options, self.threads)
        if encoder.extradata != self.extradata:  # never mux a chunk the stream's header does not describe
            raise RuntimeError("a chunk encoder's SPS/PPS differ from the stream's (set CVTOOLS_ENCODE_CHUNKS=0)")
        packets = []
        for frame in frames:
            if self.stop.is_set():
                return []
            packets.extend(encoder.encode(frame))
        packets.extend(encoder.encode(None))
        return packets

    def _mux_oldest(self) -> None:
        packets = self.pending.popleft().result()  # a worker's error is raised here, as it was
        for packet in packets:
            self.mux(packet)
        self.encoded_chunks += 1

    def finish(self) -> None:
        """Encode the last (partial) chunk and mux everything still under way."""
        if self.buffer:
            self._submit()
        self.drain()

    def drain(self) -> List[object]:
        """Mux every chunk submitted, stop the workers, and hand back the frames not yet
        submitted (the caller encodes them another way)."""
        while self.pending:
            self._mux_oldest()
        self.pool.shutdown(wait=True)
        frames, self.buffer = self.buffer, []
        return frames

    def abort(self) -> None:
        """Stop: chunks not started are cancelled, those under way stop at their next frame, and
        this returns once no worker runs (nothing is muxed)."""
        self.stop.set()
        for future in self.pending:
            future.cancel()
        self.pool.shutdown(wait=True)
        self.pending.clear()
        self.buffer = []
