"""The web server behind ``cvtools ui``: a small Starlette app (run by uvicorn) serving one page.

Safe by default:

- it listens on 127.0.0.1 unless told otherwise, and then answers only requests addressed to
  that name (a web page elsewhere cannot reach it through DNS rebinding);
- an optional token (``--token``), asked of every request (a cookie set from ``/?token=...``);
- requests that do work must carry the page's own header (``X-Cvtools``), which a form or
  script on another site cannot add without the browser asking this server first (it never
  agrees), so no other site can make it compute;
- uploads are bounded in bytes (``max_upload``, ``max_video``, counted as they arrive) and
  decoded under the command line's pixel limit; they are written under new names into a
  temporary folder, outputs next to them, and files are served only by the random ids this
  server handed out; a style the browser names is a bundled one or a painting uploaded with the
  request (no path from the browser is ever opened); the folder is removed when the server
  stops, and its paths are not shown in the page's error messages;
- nothing is fetched from or sent to anywhere else: the page has no external scripts, fonts or
  analytics, and its Content-Security-Policy allows none.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Dict, Optional

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from cvtools.errors import CvtoolsError, one_line, safe_path
from cvtools.ui import library

#: The page's static files, by the only names served.
STATIC = {"app.js": "text/javascript", "style.css": "text/css"}
CSP = ("default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob: mediastream:; "
       "style-src 'self'; script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
       "frame-ancestors 'none'; form-action 'none'")
TOKEN_COOKIE = "cvtools_ui_token"
#: The library's advice for an image over the pixel limit, which a page user cannot follow.
PIXEL_ADVICE = re.compile(r"pass max_pixels=0(?: or set CVTOOLS_MAX_PIXELS=0)?(?: to allow it)?")
SERVER_PIXEL_ADVICE = "the server's limit is raised by starting it with `cvtools ui --max-pixels N`"


#: the answer to a request still running when the server stops
STOPPED = "the server stopped before this finished; start it again (cvtools ui) and retry"

#: the most styles (bundled and paintings) one Stylize blends
MAX_STYLES = 8

#: the most bytes of one webcam frame (/api/frame): a 1080p JPEG is well under 1 MB
FRAME_BYTES = 8 << 20

#: the kinds of job the page follows (progress, Cancel), one of each at a time, as said in a 409
KINDS = {"video": "a video", "dream": "a dream", "explain": "an explain"}

#: the files an own model comes as (the Explain tab)
MODEL_EXTENSIONS = (".pt", ".pth", ".pt2", ".safetensors")


@dataclass
class Settings:
    """How the server runs (the ``cvtools ui`` options)."""

    host: str = "127.0.0.1"
    port: int = 0
    token: Optional[str] = None
    device: str = "auto"
    max_upload: int = 50 << 20  # bytes of one photo request
    max_video: int = 500 << 20  # bytes of one video upload
    max_pixels: Optional[int] = -1  # as load_image: -1 = CVTOOLS_MAX_PIXELS or 100 MP
    allowed_hosts: tuple = ()  # Host headers answered; () = any (an explicit --host)


@dataclass
class Job:
    """A run in its own thread (a video, a dream, an explain): what the page polls."""

    id: str
    kind: str = "video"  # one of KINDS
    total: Optional[int] = None
    done: float = 0  # frames, steps; an explain's steps with the fraction of the one under way
    state: str = "running"  # running | done | cancelled | failed
    error: str = ""
    started: float = field(default_factory=time.perf_counter)
    seconds: float = 0.0
    file: Optional[str] = None
    cancel: threading.Event = field(default_factory=threading.Event)
    thread: Optional[threading.Thread] = None
    stage: str = ""  # where it is, as the library says it ("octave 2 of 4", "Occlusion")

    def to_json(self) -> dict:
        elapsed = (self.seconds or time.perf_counter() - self.started)
        return {"id": self.id, "kind": self.kind, "state": self.state, "done": self.done, "total": self.total,
                "stage": self.stage,
                "fps": round(self.done / elapsed, 2) if elapsed > 0 else 0.0, "error": self.error,
                "seconds": round(elapsed, 2), "url": f"/files/{self.file}" if self.file else None}


class Refused(Exception):
    def __init__(self, status: int, message: str, **extra):
        super().__init__(message)
        self.status = status
        self.extra = extra  # more of the JSON answer ("cancelled": the page tells a cancel from a failure)


def _safe_name(name: Optional[str], default: str, extensions) -> str:
    """An upload's file name made safe to create in our folder: letters, digits, '.', '-', '_'
    only, no leading dot, at most 60 characters, and an extension of ``extensions``."""
    name = Path(name or "").name
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_")[:50] or default
    ext = "." + ext.lower()
    if ext not in extensions:
        raise Refused(415, f"{name or 'the file'}: not a file type this takes ({', '.join(sorted(extensions))})")
    return stem + ext


def _bundled(name) -> str:
    """A style the browser named: a bundled one only (paintings come as uploads). Never a path,
    and one answer for any other text, so it tells nothing about this machine's files."""
    if isinstance(name, str) and name in library.style_names():
        return name
    raise Refused(400, f"unknown style {one_line(str(name), 60)!r}: pick a bundled style or upload a painting")


class App:
    """The server's state: settings, the library, the temporary folder, the files and jobs."""

    def __init__(self, settings: Settings, workdir: Optional[Path] = None):
        self.settings = settings
        self.lib = library.Library(device=settings.device, max_pixels=settings.max_pixels)
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="cvtools-ui-"))
        self.files: Dict[str, Path] = {}
        self.names: Dict[str, str] = {}  # an upload's path here -> the name it was uploaded under
        here = {re.escape(str(self.workdir)), re.escape(str(self.workdir.resolve()))}
        self._paths = re.compile(f"(?:{'|'.join(here)})[^\\s'\":;,()\\[\\]{{}}<>]*")
        self.jobs: Dict[str, Job] = {}
        self._count = 0
        self._lock = threading.Lock()
        self.app = Starlette(routes=[
            Route("/", self.index),
            Route("/static/{name}", self.static),
            Route("/favicon.ico", self.favicon),
            Route("/api/info", self.info),
            Route("/api/stylize", self.stylize, methods=["POST"]),
            Route("/api/frame", self.frame, methods=["POST"]),
            Route("/api/video", self.video, methods=["POST"]),
            Route("/api/{kind}/current", self.current),
            Route("/api/jobs/{id}", self.job),
            Route("/api/jobs/{id}/cancel", self.cancel, methods=["POST"]),
            Route("/api/dream", self.dream, methods=["POST"]),
            Route("/api/explain", self.explain, methods=["POST"]),
            Route("/api/zip", self.zip, methods=["POST"]),
            Route("/files/{id}", self.file),
        ])

    # ------------------------------------------------------------------ ASGI with the guards
    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request = Request(scope)
        refusal = self._refusal(request)
        if refusal is not None:
            return await refusal(scope, receive, send)
        set_cookie = self.settings.token and request.query_params.get("token") == self.settings.token
        started = []

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                started.append(True)
                headers = list(message.get("headers", []))
                headers += [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
                            (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY"),
                            (b"cache-control", b"no-store")]
                if set_cookie:
                    headers.append((b"set-cookie", f"{TOKEN_COOKIE}={self.settings.token}; Path=/; HttpOnly; "
                                                   "SameSite=Strict".encode()))
                message = dict(message, headers=headers)
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except asyncio.CancelledError:
            # uvicorn cancels what still runs once its graceful shutdown time is over (Ctrl-C during
            # a Dream): the page gets one clear answer and the terminal no 50-line traceback
            if not started:
                with contextlib.suppress(Exception):
                    await JSONResponse({"error": STOPPED}, status_code=503)(scope, receive, send_with_headers)

    def _refusal(self, request: Request) -> Optional[Response]:
        s = self.settings
        host = request.headers.get("host", "")
        if s.allowed_hosts and host not in s.allowed_hosts:
            return PlainTextResponse("unknown host", status_code=421)
        if s.token:
            given = (request.cookies.get(TOKEN_COOKIE) or request.headers.get("x-cvtools-token")
                     or request.query_params.get("token") or "")
            if not secrets.compare_digest(given.encode(), s.token.encode()):
                return PlainTextResponse("this page needs its token: open the address `cvtools ui` printed",
                                         status_code=403)
        if request.method not in ("GET", "HEAD") and request.headers.get("x-cvtools") != "1":
            return PlainTextResponse("requests that do work come from the page itself", status_code=403)
        return None

    # ------------------------------------------------------------------ helpers
    def _folder(self) -> Path:
        with self._lock:
            self._count += 1
            folder = self.workdir / f"{self._count:05d}"
        folder.mkdir()
        return folder

    def _publish(self, path: Path) -> str:
        key = secrets.token_urlsafe(12)
        self.files[key] = Path(path)
        return key

    def _described(self, path: Path, **extra) -> dict:
        key = self._publish(path)
        return dict({"url": f"/files/{key}", "name": Path(path).name}, **extra)

    async def _form(self, request: Request, limit: int):
        """The request's form, its body counted as it arrives: one over ``limit`` (and the form's
        own bytes) is refused as soon as it is, said length or not (a chunked upload says none),
        before Starlette spools the rest of it to disk."""
        bound = limit + (64 << 10)
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > bound:
            raise Refused(413, f"the upload is over the limit of {limit >> 20} MB")
        received = 0

        async def receive():
            nonlocal received
            message = await request.receive()
            received += len(message.get("body", b""))
            if received > bound:
                raise Refused(413, f"the upload is over the limit of {limit >> 20} MB")
            return message

        return await Request(request.scope, receive).form(max_files=16, max_fields=64, max_part_size=limit)

    @staticmethod
    def _upload_name(upload, default: str, extensions) -> str:
        """The name an upload is saved under; a Refused (400: none, 415: not a type this takes)."""
        if upload is None or isinstance(upload, str) or not getattr(upload, "filename", None):
            raise Refused(400, f"no {default} was uploaded")
        return _safe_name(upload.filename, default, extensions)

    async def _save_upload(self, upload, folder: Path, default: str, extensions, limit: int) -> Path:
        name = self._upload_name(upload, default, extensions)
        target = folder / name
        k = 1
        while target.exists():  # two uploads of one name in one request
            k += 1
            target = folder / f"{Path(name).stem}-{k}{Path(name).suffix}"
        shown = safe_path(Path(upload.filename).name)
        try:
            await self._copy(upload, target, shown, limit)
        except BaseException:
            target.unlink(missing_ok=True)  # a refused upload leaves no part of itself behind
            raise
        finally:
            await upload.close()
        self.names[str(target)] = shown
        return target

    @staticmethod
    async def _copy(upload, target: Path, shown: str, limit: int) -> None:
        size = 0
        with open(target, "xb") as out:
            while True:
                chunk = await upload.read(1 << 20)
                if not chunk:
                    break
                size += len(chunk)
                if size > limit:
                    raise Refused(413, f"{shown}: over the limit of {limit >> 20} MB")
                out.write(chunk)

    @staticmethod
    def _number(form, name, kind=float, default=None, low=None, high=None):
        text = form.get(name)
        if text is None or str(text).strip() == "":
            return default
        try:
            value = kind(str(text))
        except ValueError:
            raise Refused(400, f"{name}: {text!r} is not a number") from None
        if (low is not None and value < low) or (high is not None and value > high):
            raise Refused(400, f"{name} must be between {low} and {high}, not {value}")
        return value

    @staticmethod
    def _flag(form, name) -> bool:
        return str(form.get(name, "")).lower() in ("1", "true", "on", "yes")

    def _public(self, message: str) -> str:
        """An error as the page shows it: a path in our folder becomes the name the file was
        uploaded under (an output its own name), and the pixel limit's advice is the server's
        (a page user can pass no max_pixels)."""
        message = self._paths.sub(lambda m: self.names.get(m.group(0), Path(m.group(0)).name), message)
        return PIXEL_ADVICE.sub(SERVER_PIXEL_ADVICE, message)

    async def _guarded(self, handler):
        try:
            return await handler()
        except Refused as exc:
            return JSONResponse(dict({"error": self._public(str(exc))}, **exc.extra), status_code=exc.status)
        except CvtoolsError as exc:
            return JSONResponse({"error": self._public(str(exc))}, status_code=400)
        except MemoryError:
            return JSONResponse({"error": "out of memory; try a smaller size"}, status_code=507)
        except Exception as exc:  # a bug: say what, keep serving
            text = self._public(one_line(str(exc), 300))
            return JSONResponse({"error": f"internal error: {type(exc).__name__}: {text}"}, status_code=500)

    # ------------------------------------------------------------------ pages and files
    async def index(self, request: Request):
        return HTMLResponse(resources.files("cvtools.ui").joinpath("static/index.html").read_text("utf-8"))

    async def favicon(self, request: Request):
        # the page names its own (inline) icon; this answers a browser that asks anyway, so no
        # 404 shows up in its console on every load
        return Response(status_code=204)

    async def static(self, request: Request):
        name = request.path_params["name"]
        if name not in STATIC:
            return PlainTextResponse("not found", status_code=404)
        text = resources.files("cvtools.ui").joinpath(f"static/{name}").read_text("utf-8")
        return Response(text, media_type=STATIC[name])

    async def file(self, request: Request):
        path = self.files.get(request.path_params["id"])
        if path is None or not path.is_file():
            return PlainTextResponse("not found", status_code=404)
        download = request.query_params.get("download") == "1"
        return FileResponse(path, filename=path.name if download else None,
                            content_disposition_type="attachment" if download else "inline")

    async def zip(self, request: Request):
        """Several results (by the ids handed out) in one zip, for "Download all"."""
        async def run():
            import zipfile

            form = await self._form(request, 1 << 20)
            try:
                ids = json.loads(form.get("files") or "[]")
                paths = [self.files[i] for i in ids]
            except (ValueError, KeyError, TypeError):
                raise Refused(400, "files: not results of this page") from None
            if not paths:
                raise Refused(400, "no results to put in a zip")
            target = self._folder() / "cvtools-results.zip"

            def write():
                seen = set()
                with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as z:
                    for path in paths:
                        name, k = path.name, 1
                        while name in seen:
                            k += 1
                            name = f"{path.stem}-{k}{path.suffix}"
                        seen.add(name)
                        z.write(path, name)

            await run_in_threadpool(write)
            return JSONResponse(self._described(target))

        return await self._guarded(run)

    async def info(self, request: Request):
        from cvtools import __version__

        data = library.catalog()
        data.update(version=__version__, device=self.settings.device, max_upload_mb=self.settings.max_upload >> 20,
                    max_video_mb=self.settings.max_video >> 20)
        return JSONResponse(data)

    # ------------------------------------------------------------------ the effects
    async def stylize(self, request: Request):
        async def run():
            form = await self._form(request, self.settings.max_upload)
            folder = self._folder()
            photo = await self._save_upload(form.get("photo"), folder, "photo", library.image_extensions(),
                                            self.settings.max_upload)
            styles, names = await self._styles(form, folder)
            strength = self._number(form, "strength", float, 1.0, 0.0, 1.0)
            size = self._number(form, "size", int, None, 16, 32768)
            preserve = self._flag(form, "preserve_color")
            t0 = time.perf_counter()
            result = await run_in_threadpool(self.lib.stylize, photo, styles, strength, preserve, size, names)
            return JSONResponse({"output": self._described(result.path, width=result.width, height=result.height),
                                 "seconds": round(result.seconds, 4),
                                 "server_seconds": round(time.perf_counter() - t0, 4)})

        return await self._guarded(run)

    async def _styles(self, form, folder: Path):
        """The Stylize tab's ``styles``, JSON [{"name", "weight"}], each name bundled or "@N", the
        N-th ``painting`` of this request (saved into ``folder``) → ([(style, weight)], {painting
        path: its name})."""
        try:
            chosen = json.loads(form.get("styles") or "[]")
        except (TypeError, ValueError, RecursionError):
            chosen = None
        if not isinstance(chosen, list) or not all(isinstance(item, dict) for item in chosen):
            raise Refused(400, 'styles: not a list of {"name": ..., "weight": ...}')
        if len(chosen) > MAX_STYLES:  # said, not the first 8 blended silently
            raise Refused(400, f"at most {MAX_STYLES} styles blend at once; {len(chosen)} were ticked")
        paintings, saved = form.getlist("painting"), {}
        styles, names = [], {}
        for item in chosen:
            name, weight = str(item.get("name", "")), item.get("weight", 1.0)
            if not isinstance(weight, (int, float)) or isinstance(weight, bool) or not math.isfinite(weight):
                raise Refused(400, f"{one_line(name, 60)}: the weight is not a number")
            if name.startswith("@"):  # an uploaded painting, by its place in the form
                path = await self._painting(paintings, name, folder, saved)
                names[str(path)] = path.name
                styles.append((str(path), float(weight)))
            else:
                styles.append((_bundled(name), float(weight)))
        return styles, names

    async def _painting(self, paintings, name: str, folder: Path, saved: dict) -> Path:
        """The painting "@N" names, saved once however often the styles name it."""
        index = int(name[1:]) if name[1:].isdecimal() else -1
        if not 0 <= index < len(paintings):
            raise Refused(400, f"no painting {one_line(name, 60)}")
        if index not in saved:
            saved[index] = await self._save_upload(paintings[index], folder, f"painting{index}",
                                                   library.image_extensions(), self.settings.max_upload)
        return saved[index]

    async def frame(self, request: Request):
        async def run():
            style = _bundled(request.query_params.get("style", "mona"))
            strength = self._number(request.query_params, "strength", float, 1.0, 0.0, 1.0)
            body = bytearray()
            async for chunk in request.stream():  # counted as it arrives: a body without a length is bounded too
                body += chunk
                if len(body) > FRAME_BYTES:
                    raise Refused(413, "a webcam frame is at most 8 MB")
            body = bytes(body)
            data = await run_in_threadpool(self.lib.stylize_frame, body, style, strength,
                                           self._flag(request.query_params, "preserve_color"))
            return Response(data, media_type="image/jpeg")

        return await self._guarded(run)

    async def video(self, request: Request):
        async def run():
            form = await self._form(request, self.settings.max_video)
            style = _bundled(form.get("style") or "mona")  # before the clip is written
            stable = self._flag(form, "stable")
            strength = self._number(form, "strength", float, 1.0, 0.0, 1.0)
            size = self._number(form, "size", int, None, 16, 8192)
            upload = form.get("video")
            self._upload_name(upload, "clip", library.video_extensions())  # a bad request: its 400 (415)
            job = self._claim("video")  # only a valid request waits its turn; held while the clip is written
            try:
                clip = await self._save_upload(upload, self._folder(), "clip", library.video_extensions(),
                                               self.settings.max_video)
            except BaseException:
                del self.jobs[job.id]
                raise
            job.started = time.perf_counter()
            self._start_video(job, clip, style, stable, strength, size)
            return JSONResponse(job.to_json())

        return await self._guarded(run)

    def _start_video(self, job: Job, clip: Path, style: str, stable: bool, strength: float, size) -> None:
        """Run the video in its own thread, ``job`` saying how far it is."""
        def progress(done, total):
            job.done, job.total = done, total

        def work():
            try:
                result = self.lib.stylize_video(clip, style, stable=stable, strength=strength, size=size,
                                                progress=progress, cancelled=job.cancel.is_set)
                job.file = self._publish(result.path)
                job.done = result.extra["frames"]
                job.total = job.total or job.done
                job.state = "done"
            except library.Cancelled:
                job.state = "cancelled"
            except Exception as exc:
                job.state, job.error = "failed", self._public(str(exc) or type(exc).__name__)
            finally:
                job.seconds = time.perf_counter() - job.started

        job.thread = threading.Thread(target=work, name=f"cvtools-ui-video-{job.id}", daemon=True)
        job.thread.start()

    def _running(self, kind: str) -> Optional[Job]:
        running = [j for j in self.jobs.values() if j.kind == kind and j.state == "running"]
        return running[-1] if running else None

    def _claim(self, kind: str) -> Job:
        """A new running job of ``kind``, or the 409 saying one runs: one of each kind at a time
        (they share the device; a second would wait unseen behind the first)."""
        with self._lock:
            if self._running(kind) is not None:
                raise Refused(409, f"{KINDS[kind]} is already running; cancel it or wait")
            job = Job(secrets.token_urlsafe(8), kind=kind)
            self.jobs[job.id] = job
        return job

    async def current(self, request: Request):
        """The video (dream, explain) running now, if any: the page follows a dream's or an
        explain's progress here while its request runs, and a page loaded (or reloaded)
        meanwhile picks the job up, with its progress and Cancel, instead of a 409 it could do
        nothing about."""
        kind = request.path_params["kind"]
        if kind not in KINDS:
            return JSONResponse({"error": "no such kind of job"}, status_code=404)
        job = self._running(kind)
        return JSONResponse({"job": job.to_json() if job else None})

    async def job(self, request: Request):
        job = self.jobs.get(request.path_params["id"])
        if job is None:
            return JSONResponse({"error": "no such job"}, status_code=404)
        return JSONResponse(job.to_json())

    async def cancel(self, request: Request):
        job = self.jobs.get(request.path_params["id"])
        if job is None:
            return JSONResponse({"error": "no such job"}, status_code=404)
        job.cancel.set()
        return JSONResponse(job.to_json())

    @staticmethod
    def _given(upload) -> bool:
        """Whether an optional file field holds a file (a browser sends an empty one for none)."""
        return upload is not None and not isinstance(upload, str) and bool(upload.filename)

    async def _as_job(self, kind: str, uploads, call):
        """A dream or an explain as a job the page follows: a 409 while one of its kind runs (the
        request was checked before: a bad one gets its own answer); else ``uploads`` [(form
        value or None, default name, extensions, limit)] saved into a new folder and
        ``call(*their paths, progress=, cancelled=)`` run in a worker thread. Returns (its
        result, the job)."""
        job, folder = self._claim(kind), None
        try:
            folder = self._folder()
            saved = [None if upload is None else await self._save_upload(upload, folder, name, extensions, limit)
                     for upload, name, extensions, limit in uploads]
        except BaseException:
            del self.jobs[job.id]  # nothing runs: the next request is not refused for it
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
            raise
        job.started = time.perf_counter()
        return await run_in_threadpool(self._work, job, folder, call, saved), job

    def _work(self, job: Job, folder: Path, call, saved):
        """``call`` as ``job``, in its worker thread: the library's progress goes to the job, its
        cancel is asked between steps; the job's state is set here, so that it is right even
        when the request waiting for it is gone (the server stopping). A cancelled run leaves
        nothing: its folder (uploads and all) goes, and the answer is a 409 saying so."""
        def progress(done, total, stage=""):
            job.done, job.total, job.stage = done, total, stage

        try:
            result = call(*saved, progress=progress, cancelled=job.cancel.is_set)
        except library.Cancelled:
            shutil.rmtree(folder, ignore_errors=True)
            job.state = "cancelled"
            raise Refused(409, f"{job.kind} cancelled; nothing was kept", cancelled=True) from None
        except BaseException as exc:
            job.state, job.error = "failed", self._public(one_line(str(exc), 300) or type(exc).__name__)
            raise
        finally:
            job.seconds = time.perf_counter() - job.started
        job.state = "done"
        return result

    async def dream(self, request: Request):
        async def run():
            form = await self._form(request, self.settings.max_upload)
            images, limit = library.image_extensions(), self.settings.max_upload
            photo, guide = form.get("photo"), form.get("guide") if self._given(form.get("guide")) else None
            self._upload_name(photo, "photo", images)  # a bad request: its 400 (415), whatever runs
            if guide is not None:
                self._upload_name(guide, "guide", images)
            layer = str(form.get("layer") or "")
            octaves = self._number(form, "octaves", int, 4, 1, 12)
            steps = self._number(form, "steps", int, 10, 0, 200)
            size = self._number(form, "size", int, None, 16, 8192)
            frames = self._number(form, "frames", int, 1, 1, 120)
            zoom = self._number(form, "zoom", float, 1.05, 1.0, 2.0)

            def call(photo, guide, **hooks):
                return self.lib.dream(photo, [layer] if layer else [], octaves, steps, guide, size, 0, frames, zoom,
                                      **hooks)

            result, job = await self._as_job("dream", [(photo, "photo", images, limit),
                                                       (guide, "guide", images, limit)], call)
            output = self._described(result.path, width=result.width, height=result.height, frames=frames)
            job.file = output["url"].rpartition("/")[2]  # a page reloaded meanwhile shows it from the job
            return JSONResponse({"output": output, "seconds": round(result.seconds, 3)})

        return await self._guarded(run)

    async def explain(self, request: Request):
        async def run():
            form = await self._form(request, self.settings.max_upload)
            images, limit = library.image_extensions(), self.settings.max_upload
            photo, model = form.get("photo"), form.get("model") if self._given(form.get("model")) else None
            self._upload_name(photo, "photo", images)  # a bad request: its 400 (415), whatever runs
            if model is not None:
                if not (loopback(self.settings.host) or self.settings.token):
                    raise Refused(403, "own models are loaded only on a page local to this machine or with a token "
                                       "(a model file runs code of its own)")
                self._upload_name(model, "model", MODEL_EXTENSIONS)
            methods = [m for m in str(form.get("methods") or "").split(",") if m]
            target = self._number(form, "target", int, None, 0, 10 ** 6)
            layer = str(form.get("layer") or "") or None
            metrics, sanity = self._flag(form, "metrics"), self._flag(form, "sanity")
            architecture = str(form.get("architecture") or "") or None

            def call(photo, model, **hooks):
                return self.lib.explain(photo, methods, target, layer, 5, metrics, sanity, model, architecture,
                                        **hooks)

            out, job = await self._as_job("explain", [(photo, "photo", images, limit),
                                                      (model, "model", MODEL_EXTENSIONS, limit * 8)], call)
            out["pictures"] = [self._described(p.pop("path"), **p) for p in out["pictures"]]
            out["panel"] = self._described(out["panel"])
            job.file = out["panel"]["url"].rpartition("/")[2]
            out["seconds"] = round(out["seconds"], 3)
            return JSONResponse(out)

        return await self._guarded(run)

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        """Cancel running jobs and remove the temporary folder with everything in it."""
        jobs = list(self.jobs.values())
        for job in jobs:
            job.cancel.set()
        end = time.monotonic() + 10
        for job in jobs:  # a video stops at its next batch of frames, a dream or an explain at its next step
            if job.thread is not None:
                job.thread.join(timeout=max(0.0, end - time.monotonic()))
            while job.state == "running" and job.thread is None and time.monotonic() < end:
                time.sleep(0.05)  # a worker thread of the pool: its job says when it has stopped
        shutil.rmtree(self.workdir, ignore_errors=True)


def loopback(host: str) -> bool:
    return host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")
