"""The page's one door into cvtools: every library call the web page makes goes through here.

The server (:mod:`cvtools.ui.server`) only moves bytes and checks requests; what an effect
does, how its models are built and cached, and how results are written (through
``output_path_for`` + ``save_image`` with an ``Outputs`` per result, so each download carries the
same provenance marker, sRGB tag and atomic write as the command line's outputs) lives here.
When the per-file work becomes library jobs (issue #30), this module is what changes.

Nothing here prints or reads a path the browser chose: inputs are files the server wrote into
its own temporary folder, and outputs go next to them.
"""

from __future__ import annotations

import functools
import hashlib
import io
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from cvtools.errors import CvtoolsError, UsageError
from cvtools.visualize.catalog import METHOD_SEPARATOR  # a panel's name joins methods as the command line's

#: The default network of the Dream and Explain tabs (embedded, no download).
DEFAULT_BACKBONE = "efficientnet_lite0"
#: Methods shown in the Explain tab, first ones ticked by default.
DEFAULT_METHODS = ("gradcam", "smoothgrad")
#: The longest side a webcam frame may have (the page sends smaller ones).
MAX_FRAME_SIDE = 1280


class Cancelled(CvtoolsError):
    """A run the user cancelled (raised from its progress callback between steps; a video's
    partial file is removed, a dream or an explain has written nothing yet)."""


class _Steps:
    """The dream engine's ``progress`` (what it advances once per step, as the command's tqdm
    bar: ``update(n)`` and ``n``): each step is told to ``report(done, total, stage)``, and
    ``cancelled()`` is asked after it, a True ending the dream there (:class:`Cancelled`)."""

    def __init__(self, total: int, steps: int, frames: int, report=None, cancelled=None):
        self.n, self.total, self.steps, self.frames = 0, total, max(1, steps), frames
        self.report, self.cancelled = report, cancelled

    def check(self) -> None:
        if self.cancelled is not None and self.cancelled():
            raise Cancelled("cancelled")

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.report is not None:
            self.report(self.n, self.total, self.stage())
        self.check()

    def stage(self) -> str:
        """'octave 2 of 4' (with 'frame 3 of 10, ' before it for an animation): where the step
        just done (the first one before any) lies."""
        per_frame = max(1, self.total // self.frames)
        octaves = max(1, per_frame // self.steps)
        k = max(0, min(self.n, self.total) - 1)
        text = f"octave {k % per_frame // self.steps + 1} of {octaves}"
        return f"frame {k // per_frame + 1} of {self.frames}, {text}" if self.frames > 1 else text


class _Stages:
    """An explain's steps (the class, each method, the metrics, the sanity check, the pictures)
    told to ``report(done, total, stage)`` as each starts, and the slow checks (the metrics, the
    sanity check) also as they go: ``done`` then counts the step's fraction (its forward passes
    or maps done of all it runs), so the page's bar and percentage move through minutes of them;
    ``cancelled()`` is asked as each starts and before each forward pass of the network
    (:func:`_cancellable`)."""

    #: the Explainer's ``on_stage`` names, as the page says them
    NAMES = {"metrics": "faithfulness metrics", "sanity check": "sanity check"}

    def __init__(self, report=None, cancelled=None):
        self.done, self.total, self.report, self.cancelled = 0, 1, report, cancelled
        self.stage = ""  # the step under way, as the page says it

    def check(self) -> None:
        if self.cancelled is not None and self.cancelled():
            raise Cancelled("cancelled")

    def begin(self, stage: str) -> None:
        self.check()
        self.stage = stage
        if self.report is not None:
            self.report(self.done, self.total, stage)

    def within(self, done: int, total: int) -> None:
        """The Explainer's ``on_progress``: ``done`` of the ``total`` parts of the step under way
        (the metrics' forward passes, the sanity check's maps), said as that much of one step."""
        if self.report is not None and total > 0:
            self.report(self.done + min(done, total) / total, self.total, self.stage)

    def end(self) -> None:
        self.done += 1

    def on_stage(self, text: str) -> None:
        """The Explainer's ``on_stage``: 'metrics of ... ...' as the metrics start, '...: done in
        N s' as they end (the same for the sanity check)."""
        if text.endswith("..."):
            what = text.split(" of ")[0]
            self.begin(self.NAMES.get(what, what))
        else:
            self.end()

    def counted(self, method) -> None:
        """Each run of ``method`` one step, begun with its title: the Explainer runs every method in
        one call, so its ``attribute`` (this object's own) is what says where the run is."""
        attribute = method.attribute

        def counted_attribute(*args, **kwargs):
            self.begin(method.title)
            out = attribute(*args, **kwargs)
            self.end()
            return out

        method.attribute = counted_attribute


@contextmanager
def _cancellable(backbone, check: Callable[[], None]):
    """``check()`` before every forward pass of ``backbone``'s network: one method, the metrics or
    the sanity check runs hundreds of them (occlusion, Score-CAM: minutes on a CPU), so a cancel
    stops the run within a forward pass, not at the end of a minutes-long step. (The sanity
    check's copy of the network copies the hook, a plain function, with it.) A network that takes
    no Python hook (TorchScript) is cancelled between steps only."""
    try:
        handle = backbone.model.register_forward_pre_hook(lambda module, args: check())
    except Exception:
        handle = None
    try:
        yield
    finally:
        if handle is not None:
            handle.remove()


def image_extensions() -> Tuple[str, ...]:
    from cvtools.io.discover import IMAGE_EXTENSIONS

    return tuple(sorted(IMAGE_EXTENSIONS))


def video_extensions() -> Tuple[str, ...]:
    """Clips the Video tab takes: videos and animated GIF/WebP (as ``cvtools stylize anim.gif``;
    a still one is refused by the probe, naming it)."""
    from cvtools.io.discover import VIDEO_EXTENSIONS
    from cvtools.video.io import ANIMATION_EXTENSIONS

    return tuple(sorted(VIDEO_EXTENSIONS | ANIMATION_EXTENSIONS))


@functools.lru_cache(maxsize=1)
def style_names() -> frozenset:
    """The bundled styles' names: the only styles the browser may name (paintings are uploads)."""
    from cvtools.style.records import bundled_names

    return frozenset(bundled_names())


def catalog() -> dict:
    """What the page offers, read without torch: styles, methods, the default network's layers."""
    from cvtools.backbones.registry import get_spec
    from cvtools.style.records import bundled_records
    from cvtools.visualize.catalog import METHOD_INFO, TRANSFORMER_ONLY

    spec = get_spec(DEFAULT_BACKBONE)
    return {
        "styles": [{"name": r.name, "summary": r.summary()} for r in bundled_records()],
        "methods": [{"name": name, "title": info.title, "uses_layer": bool(info.uses_layer),
                     "default": name in DEFAULT_METHODS}
                    for name, info in METHOD_INFO.items() if name not in TRANSFORMER_ONLY],
        "backbone": DEFAULT_BACKBONE,
        "layers": list(spec.layers),
        "dream_layers": list(spec.defaults.dream),
        "cam_layer": spec.defaults.cam,
        "image_extensions": list(image_extensions()),
        "video_extensions": list(video_extensions()),
    }


@dataclass
class Result:
    """A written output and what the page shows about it."""

    path: Path
    width: int
    height: int
    seconds: float
    extra: Optional[dict] = None


def _digest(path: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(Path(path).read_bytes())
    return h.hexdigest()


class Library:
    """The effects, with their models built once and kept (a style, the any-painting network
    with its paintings, the backbone per precision). One lock serialises the device work, so a
    webcam frame, a photo and a video take turns instead of fighting over memory and cores.

    device: auto | cpu | cuda | cuda:N | mps (as the commands' ``--device``). max_pixels: the
    decoded-pixel limit of uploads (-1: the command line's, ``CVTOOLS_MAX_PIXELS`` or 100 MP).
    """

    def __init__(self, device: str = "auto", max_pixels: Optional[int] = -1):
        self.device = device
        self.max_pixels = max_pixels
        self.lock = threading.RLock()
        self._stylizers: Dict[tuple, object] = {}
        self._backbones: Dict[tuple, object] = {}

    # ------------------------------------------------------------------ files in and out
    def load(self, path):
        """An uploaded image decoded as every command decodes (validated, EXIF turned, ICC → sRGB,
        the pixel limit)."""
        from cvtools.io.decode import load_image

        return load_image(path, max_pixels=self.max_pixels)

    @staticmethod
    def save(input_path: Path, suffix: str, image, command: str, options: dict, alpha=None, ext=None,
             quality: int = 95) -> Path:
        """Write ``image`` next to ``input_path`` as the command line writes its outputs: named by
        ``output_path_for`` with an ``Outputs`` holding the command and its options, so the file
        carries the provenance marker and the sRGB tag (``save_image``), written atomically."""
        from cvtools.io.atomic import save_image
        from cvtools.io.markers import Provenance
        from cvtools.io.naming import Outputs, OutputSkipped, output_path_for

        outputs = Outputs(Provenance(command, options), batch=[input_path])
        try:
            target = output_path_for(input_path, None, suffix, ext=ext, inputs=[input_path], outputs=outputs)
        except OutputSkipped as done:  # the same command, options and input: that file is this result
            if done.kind == "done" and done.target is not None:
                return Path(done.target)
            raise
        save_image(target, image, alpha=alpha, quality=quality, outputs=outputs)
        return target

    @staticmethod
    def target(input_path: Path, suffix: str, command: str, options: dict, ext: str, video: bool = False):
        """(the name ``output_path_for`` gives an output written later (a video, an animation), the
        ``Outputs`` that named it with its provenance): give the writer both, so that it tags the
        file (the container's comment)."""
        from cvtools.io.markers import Provenance
        from cvtools.io.naming import Outputs, output_path_for

        outputs = Outputs(Provenance(command, options), batch=[input_path])
        return output_path_for(input_path, None, suffix, ext=ext, inputs=[input_path], video=video,
                               outputs=outputs), outputs

    # ------------------------------------------------------------------ style
    def stylizer(self, styles: Sequence[Tuple[str, float]], photos: bool = True):
        """The stylizer for ``styles`` [(bundled name or painting file, weight)]: one bundled style
        alone runs its own network, anything else the any-painting network (what ``cvtools
        stylize -s a -s painting.jpg:0.3`` runs); for photos on a CPU, their shipped ONNX graphs."""
        from cvtools.style.records import bundled_names

        if not styles:
            raise UsageError("pick at least one style", param="styles")
        known = set(bundled_names())
        for source, weight in styles:
            if not (weight > 0):
                raise UsageError(f"a style's weight must be above 0, not {weight}", param="styles")
            if source not in known and not Path(source).is_file():
                raise UsageError(f"unknown style {source!r}", param="styles")
        key = (tuple((s if s in known else _digest(Path(s)), float(w)) for s, w in styles), photos)
        with self.lock:
            built = self._stylizers.get(key)
            if built is None:
                built = self._build_stylizer(styles, known, photos)
                if len(self._stylizers) > 8:  # paintings come and go: keep the last few
                    self._stylizers.pop(next(iter(self._stylizers)))
                self._stylizers[key] = built
        return built

    def _build_stylizer(self, styles, known, photos):
        if len(styles) == 1 and styles[0][0] in known:
            from cvtools.style.records import BUNDLED_RECORDS, read_record

            # the bundled record itself: resolve_style would take a file of that name in the
            # server's working folder first, and a name from the browser never means a local file
            record = read_record(BUNDLED_RECORDS / f"{styles[0][0]}.json")
            if photos:
                from cvtools.style.fast_cpu import torch_free_stylizer

                fast = torch_free_stylizer(record, device=self.device)
                if fast is not None:
                    return fast
            from cvtools.style.stylize import Stylizer

            return Stylizer(record, device=self.device)
        from cvtools.style.records import load_painting

        sources = [(s if s in known else load_painting(s), float(w)) for s, w in styles]
        names = [s if s in known else Path(s).stem for s, _ in styles]
        if photos:  # on a CPU, the shipped graphs: the page's first painting answers without loading torch
            from cvtools.style.fast_cpu_painting import torch_free_painting_stylizer

            fast = torch_free_painting_stylizer(sources, device=self.device, name="+".join(dict.fromkeys(names)))
            if fast is not None:
                return fast
        from cvtools.style.painting import NetworkPaintingStylizer

        return NetworkPaintingStylizer(sources, device=self.device, name="+".join(dict.fromkeys(names)))

    @staticmethod
    def style_label(styles: Sequence[Tuple[str, float]], names: Dict[str, str]) -> str:
        return "+".join(dict.fromkeys(Path(names.get(s, s)).stem for s, _ in styles))

    def stylize(self, photo: Path, styles: Sequence[Tuple[str, float]], strength: float = 1.0,
                preserve_color: bool = False, size: Optional[int] = None, names: Optional[Dict[str, str]] = None,
                ) -> Result:
        """``cvtools stylize PHOTO -s ... --strength --preserve-color --size``, written next to the
        upload. ``names``: the paintings' file names as the user gave them (for the output name
        and the marker). A bundled style alone mixes pixels below full strength (the command's
        default), a blend or a painting weakens the style itself."""
        import time

        from cvtools.ops import resize_long_side

        names = names or {}
        if not 0.0 <= strength <= 1.0:
            raise UsageError(f"strength must be between 0 and 1, not {strength}", param="strength")
        loaded = self.load(photo)
        # shrink only, as the command without --enlarge: the marker's --size then reproduces it
        rgb = resize_long_side(loaded.rgb, size, enlarge=False) if size else loaded.rgb
        stylizer = self.stylizer(styles)
        with self.lock:
            t0 = time.perf_counter()
            out = stylizer(rgb, strength=strength, preserve_color=preserve_color, tile="auto", as_uint8=True)
            seconds = time.perf_counter() - t0
        label = self.style_label(styles, names)
        spec = [f"{Path(names.get(s, s)).name}:{w:g}" if len(styles) > 1 else Path(names.get(s, s)).name
                for s, w in styles]
        options = {"--style": spec, "--strength": strength, "--preserve-color": bool(preserve_color), "--size": size}
        target = self.save(photo, label, out, "stylize", options, alpha=loaded.alpha)
        return Result(target, rgb.width, rgb.height, seconds)

    def stylize_frame(self, data: bytes, style: str, strength: float = 1.0, preserve_color: bool = False) -> bytes:
        """One webcam frame (JPEG or PNG bytes) → the stylized frame as JPEG bytes (not written)."""
        from PIL import Image

        try:
            im = Image.open(io.BytesIO(data), formats=["JPEG", "PNG", "WEBP"])
            if max(im.size) > MAX_FRAME_SIDE:
                raise UsageError(f"a webcam frame is at most {MAX_FRAME_SIDE} px on its long side")
            rgb = im.convert("RGB")
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            raise UsageError(f"not a frame the page sends ({type(exc).__name__})") from None
        stylizer = self.stylizer([(style, 1.0)])
        with self.lock:
            out = stylizer(rgb, strength=strength, preserve_color=preserve_color, tile=None, as_uint8=True)
        if not isinstance(out, Image.Image):
            from cvtools.io.decode import tensor_to_pil

            out = tensor_to_pil(out)
        buf = io.BytesIO()
        out.save(buf, format="JPEG", quality=85)
        return buf.getvalue()

    def stylize_video(self, clip: Path, style: str, stable: bool = False, strength: float = 1.0,
                      size: Optional[int] = None, progress: Optional[Callable[[int, Optional[int]], None]] = None,
                      cancelled: Optional[Callable[[], bool]] = None) -> Result:
        """``cvtools stylize clip.mp4 -s STYLE [--stable] [--size N]``: an MP4 next to the upload,
        with the sound and the marker. ``progress(done, total)`` after each batch of frames;
        ``cancelled()`` is asked then too, and a True ends the run (:class:`Cancelled`; the
        unfinished file is removed)."""
        import time

        from cvtools.video.process import stylize_video

        def report(done, total):
            if cancelled is not None and cancelled():
                raise Cancelled("cancelled")
            if progress is not None:
                progress(done, total)

        options = {"--style": [style], "--strength": strength, "--size": size, "--stable": bool(stable)}
        target, outputs = self.target(clip, style, "stylize", options, ext=".mp4", video=True)
        stylizer = self.stylizer([(style, 1.0)], photos=False)
        stabilizer = None
        if stable:
            from cvtools.video.stability import stabilizer_for

            stabilizer = stabilizer_for(stylizer)
        with self.lock:
            t0 = time.perf_counter()
            result = stylize_video(stylizer, clip, target, size=size, strength=strength, stable=stabilizer,
                                   progress=report, outputs=outputs)
        return Result(Path(result.path), result.width, result.height, time.perf_counter() - t0,
                      extra={"frames": result.frames})

    # ------------------------------------------------------------------ models
    def backbone(self, precision: str = "auto", model: Optional[Path] = None, architecture: Optional[str] = None):
        """The default embedded network (or the user's uploaded checkpoint), cached per precision."""
        key = (precision, str(model) if model else None, architecture)
        with self.lock:
            bb = self._backbones.get(key)
            if bb is None:
                if model is not None:
                    from cvtools.backbones import load_user_model

                    bb = load_user_model(model, architecture or None, device=self.device, precision=precision)
                    for k in [k for k in self._backbones if k[1] is not None]:  # one user model at a time
                        del self._backbones[k]
                else:
                    from cvtools.backbones import load_backbone

                    bb = load_backbone(DEFAULT_BACKBONE, device=self.device, precision=precision)
                self._backbones[key] = bb
        return bb

    def dream(self, photo: Path, layers: Sequence[str] = (), octaves: int = 4, steps: int = 10,
              guide: Optional[Path] = None, size: Optional[int] = None, seed: int = 0, frames: int = 1,
              zoom: float = 1.05, fps: float = 12.0, progress: Optional[Callable[[int, int, str], None]] = None,
              cancelled: Optional[Callable[[], bool]] = None) -> Result:
        """``cvtools dream PHOTO --layer ... --octaves --steps [--guide G] [--size N]``; with
        ``frames`` > 1 the zooming animation (``--frames N --zoom Z -o NAME.webp``), an animated WebP.
        ``progress(done, total, stage)`` after each step (of all octaves and frames, the numbers of
        the command's bar; stage 'octave 2 of 4'); ``cancelled()`` is asked then too, and a True
        ends the run (:class:`Cancelled`) before anything is written."""
        import time

        from cvtools.dream import DreamEngine, DreamSettings
        from cvtools.io.decode import pil_to_tensor
        from cvtools.ops import resize_long_side

        settings = DreamSettings(layers=tuple(layers) or None, octaves=int(octaves), steps=int(steps))
        settings = settings.validated()
        loaded = self.load(photo)
        # shrink only, as the command without --enlarge: the marker's --size then reproduces it
        rgb = resize_long_side(loaded.rgb, size, enlarge=False) if size else loaded.rgb
        guide_tensor = pil_to_tensor(self.load(guide).rgb) if guide is not None else None
        with self.lock:
            bb = self.backbone()
            if layers:
                bb.check_layers(list(layers))
            t0 = time.perf_counter()
            engine = DreamEngine(bb, settings, guide=guide_tensor)
            bar = _Steps(engine.total_steps(rgb.height, rgb.width) * int(frames), int(steps), int(frames),
                         progress, cancelled)
            bar.check()  # cancelled while it waited its turn
            if progress is not None:
                progress(0, bar.total, bar.stage())
            options = {"--layer": list(layers) or None, "--octaves": int(octaves), "--steps": int(steps),
                       "--guide": guide.name if guide is not None else None, "--size": size, "--seed": seed}
            if frames > 1:
                from cvtools.dream.animation import write_dream_animation

                options.update({"--frames": int(frames), "--zoom": float(zoom), "--fps": float(fps)})
                target, outputs = self.target(photo, "dream", "dream", options, ext=".webp")
                write_dream_animation(engine, pil_to_tensor(rgb), int(frames), target, zoom_factor=float(zoom),
                                      seed=seed, alpha=None, fps=float(fps), progress=bar, outputs=outputs)
                return Result(target, rgb.width, rgb.height, time.perf_counter() - t0, extra={"frames": frames})
            out = engine(pil_to_tensor(rgb), seed=seed, progress=bar)
            seconds = time.perf_counter() - t0
        target = self.save(photo, "dream", out, "dream", options, alpha=loaded.alpha)
        return Result(target, rgb.width, rgb.height, seconds)

    def explain(self, photo: Path, methods: Sequence[str], target: Optional[int] = None, layer: Optional[str] = None,
                top: int = 5, metrics: bool = False, sanity: bool = False, model: Optional[Path] = None,
                architecture: Optional[str] = None, progress: Optional[Callable[[float, int, str], None]] = None,
                cancelled: Optional[Callable[[], bool]] = None) -> dict:
        """``cvtools visualize METHODS PHOTO [--target N] [--layer L] [--metrics] [--sanity]``:
        the top-k classes, one picture per method (written beside the upload, each with its
        marker), the side-by-side panel, and the trust checks' lines when asked.
        ``progress(done, total, stage)`` as each step starts (the class, each method by its title,
        the metrics, the sanity check, the pictures), and through the metrics and the sanity
        check as they go (``done`` with the step's fraction done: 3.25 is a quarter into the fourth
        step); ``cancelled()`` is asked then and before
        each forward pass of the network, and a True ends the run (:class:`Cancelled`) before
        any picture is written."""
        import time

        from cvtools.visualize.catalog import METHOD_INFO
        from cvtools.visualize.explain import draw_explanation, precision_for
        from cvtools.visualize.render import display_size

        methods = [m for m in dict.fromkeys(methods)]
        if not methods:
            raise UsageError("pick at least one method", param="methods")
        unknown = [m for m in methods if m not in METHOD_INFO]
        if unknown:
            raise UsageError(f"unknown method {unknown[0]!r}", param="methods")
        loaded = self.load(photo)
        steps = _Stages(progress, cancelled)
        with self.lock:
            steps.begin("loading the network")  # cancelled while it waited its turn: stops here
            bb = self.backbone(precision_for(methods), model=model, architecture=architecture)
            t0 = time.perf_counter()
            ranked, explainer, report = self._explained(bb, loaded, methods, target, layer, top, metrics, sanity,
                                                        steps)
            seconds = time.perf_counter() - t0
        steps.begin("drawing the pictures")  # the last chance to cancel: then every picture is written
        result = report.explanation
        shown = loaded.rgb.resize(display_size(*loaded.rgb.size))
        base = {"--target": target, "--layer": layer or None, "--model": model.name if model else None}
        pictures = []
        for method in explainer.methods:
            tile = draw_explanation(shown, result, [method])
            path = self.save(photo, method.name, tile, f"visualize {method.name}", base, ext=".png")
            pictures.append({"method": method.name, "title": method.title, "path": path})
        if len(methods) == 1:  # the panel of one method is its picture
            panel_path = pictures[0]["path"]
        else:
            panel = draw_explanation(shown, result, explainer.methods, name=photo.name)
            panel_path = self.save(photo, METHOD_SEPARATOR.join(methods), panel, f"visualize {','.join(methods)}",
                                   base, ext=".png")
        steps.end()
        if progress is not None:
            progress(steps.done, steps.total, "done")
        return {"target": result.target, "label": result.label, "probability": result.probability,
                "top": ranked, "pictures": pictures, "panel": panel_path, "seconds": seconds,
                "layer": layer or getattr(getattr(bb, "defaults", None), "cam", None),
                "layers": list(bb.layer_paths),
                "checks": report.details() if (metrics or sanity) else []}

    @staticmethod
    def _explained(bb, loaded, methods, target, layer, top, metrics, sanity, steps):
        """:meth:`explain`'s network work, under the lock: (the top classes, the Explainer, its
        report), each step said to ``steps`` (a :class:`_Stages`)."""
        import torch

        from cvtools.classify import answer_tensor
        from cvtools.visualize.explain import Explainer, analysis_tensor
        from cvtools.visualize.model import predict

        with _cancellable(bb, steps.check):
            steps.begin("reading the classes")
            if layer:
                bb.module(layer)  # an unknown layer is one line naming it
            pre = bb.preprocessing
            x = analysis_tensor(loaded.rgb, pre.crop_size)[None].to(bb.device)
            answer = answer_tensor(loaded.rgb, pre)[None].to(bb.device)
            k = min(int(top), len(bb.categories))
            with torch.no_grad():
                _, _, logits = predict(bb, answer)
                probs = bb.probabilities(logits)[0]
            values, indices = probs.topk(k)
            ranked = [{"index": int(i), "label": bb.categories[int(i)], "probability": float(p)}
                      for p, i in zip(values.cpu(), indices.cpu())]
            if target is not None and not 0 <= int(target) < len(bb.categories):
                raise UsageError(f"class {target} is not one of the model's {len(bb.categories)}", param="target")
            explainer = Explainer(bb, methods, target=None if target is None else int(target), layer=layer or None,
                                  on_stage=steps.on_stage, on_progress=steps.within)
            # the class, each method, the checks asked for, the pictures
            steps.total = 2 + len(explainer.methods) + bool(metrics) + bool(sanity)
            steps.end()
            for method in explainer.methods:
                steps.counted(method)
            report = explainer.run(x, metrics=metrics, sanity=sanity, answer_from=answer)[0]
        return ranked, explainer, report


def parse_styles(text: str) -> List[Tuple[str, float]]:
    """``"mona:0.7,starry_night:0.3"`` → [("mona", 0.7), ("starry_night", 0.3)] (the page's form field)."""
    out = []
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        name, _, weight = part.partition(":")
        try:
            w = float(weight) if weight else 1.0
        except ValueError:
            raise UsageError(f"weight {weight!r} is not a number", param="styles") from None
        out.append((name.strip(), w))
    return out
