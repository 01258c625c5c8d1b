"""Attribution maps as a library job: what ``cvtools visualize METHOD`` does to each photo of a
folder (a captioned overlay or a panel of methods, with the raw maps, the sanity grid and the
trust measures on request), for :func:`cvtools.batch.run`, batched on the device.

Imports no torch at import time (the command line names its outputs with :func:`output_suffix`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Union

from cvtools.batch import BatchedWork
from cvtools.visualize.catalog import file_slug, parse_methods


def output_suffix(methods):
    """What the picture's name ends with: the methods (up to three), else ``methods``."""
    return "-".join(file_slug(m) for m in methods) if len(methods) <= 3 else "methods"


@dataclass
class ExplainWork(BatchedWork):
    """The job :func:`explain_work` makes: a :class:`~cvtools.batch.BatchedWork` that also keeps,
    for the run's closing lines, ``verdicts`` ((path, predicted label, true label) per photo of
    known class) and ``summary`` (method -> the trust measures of each photo, with ``metrics``)."""

    verdicts: List[tuple] = field(default_factory=list)
    summary: Dict[str, list] = field(default_factory=dict)


def explain_work(explainer, methods, *, preprocessing=None, output=None, size=None, many=True, overwrite=False,
                 inputs=(), outputs=None, max_pixels=-1, raw=False, raw_size="photo", colormap=None, alpha=0.7,
                 captions=True, metrics=False, sanity=False, truths=None, batch_size=8, quiet=False,
                 on_result=None) -> ExplainWork:
    """The per-photo work: name the outputs with ``outputs`` (the run's
    :class:`~cvtools.io.naming.Outputs`; ``NAME_{output_suffix(methods)}.jpg``, the raw maps and
    the sanity grid beside it), decode (``max_pixels``), explain batches of same-size photos with
    ``explainer`` (an :class:`~cvtools.visualize.explain.Explainer`, or a Deferred one) at a short
    side of ``size`` (default: ``preprocessing``'s crop, itself defaulting to the backbone's), draw
    and write. ``truths``: the photos' true classes (a :class:`~cvtools.visualize.truth.TrueClasses`
    or a Deferred one): a misclassified photo is explained for both classes. ``quiet``: no note per
    photo. ``on_result(record)``: each photo's result as a JSON-ready dict (path, outputs, class,
    probability, metrics, sanity, true class)."""
    methods = list(methods)
    stages = _Stages(explainer, methods, preprocessing, output, size, many, overwrite, inputs, outputs, max_pixels,
                     raw, raw_size, colormap, alpha, captions, metrics, sanity, truths, quiet, on_result,
                     summary={m: [] for m in methods})
    return ExplainWork(stages.prepare, stages.compute, stages.finish, batch_size, verdicts=stages.verdicts,
                       summary=stages.summary)


@dataclass
class _Stages:
    """:func:`explain_work`'s settings and its three stages (see there)."""

    explainer: object
    methods: List[str]
    preprocessing: object
    output: Optional[str]
    size: Optional[int]
    many: bool
    overwrite: bool
    inputs: Sequence
    outputs: object
    max_pixels: Optional[int]
    raw: bool
    raw_size: str
    colormap: Optional[str]
    alpha: float
    captions: bool
    metrics: bool
    sanity: bool
    truths: object
    quiet: bool
    on_result: Optional[Callable[[dict], None]]
    verdicts: List[tuple] = field(default_factory=list)
    summary: Dict[str, list] = field(default_factory=dict)

    def prepare(self, path):
        """Name the outputs (claimed before the work), decode, and make the tensors."""
        from PIL import Image

        from cvtools.io.decode import load_image
        from cvtools.io.naming import output_path_for, side_output_for

        ext = ".jpg" if Path(path).suffix.lower() in (".jpg", ".jpeg") else ".png"
        out = output_path_for(path, self.output, output_suffix(self.methods), ext=ext, many=self.many,
                              overwrite=self.overwrite, inputs=self.inputs, outputs=self.outputs)
        sides = side_outputs(out, self.methods, self.raw, self.sanity)
        for side in sides.values():  # claimed like the main output, before the work
            side_output_for(side, path, overwrite=self.overwrite, inputs=self.inputs, outputs=self.outputs)
        photo = load_image(path, max_pixels=self.max_pixels).rgb
        # torch from here on: a finished output or a broken file above never pays for it
        from cvtools.classify import answer_tensor
        from cvtools.visualize.explain import analysis_tensor
        from cvtools.visualize.render import display_size

        pre = self.preprocessing if self.preprocessing is not None else self.explainer.backbone.preprocessing
        x = analysis_tensor(photo, self.size or pre.crop_size)
        answer = answer_tensor(photo, pre)  # the class is read as `classify` reads it
        true = self.truths.index_of(path) if self.truths is not None else None
        full = photo.size  # (width, height): raw maps are written at this size
        # Only the display-size copy waits for the batch: a queue of 12-megapixel photos would not.
        photo = photo.resize(display_size(*photo.size), Image.BICUBIC, reducing_gap=3.0)
        return dict(out=out, sides=sides, photo=photo, x=x, answer=answer, full=full, true=true)

    def compute(self, items):
        """One batch on the device: the maps (and checks), and for misclassified photos of known
        class the same methods for their true class."""
        import torch

        explainer = self.explainer
        device = explainer.backbone.device
        x = torch.stack([it["x"] for it in items]).to(device)
        answers = torch.stack([it["answer"] for it in items]).to(device)
        reports = explainer.run(x, metrics=self.metrics, sanity=self.sanity, answer_from=answers)
        wrong = [i for i, (it, r) in enumerate(zip(items, reports))
                 if it["true"] is not None and it["true"] != r.explanation.target]
        if wrong:  # the same methods for the class the photo really is
            pick = torch.tensor(wrong, device=device)
            true = torch.tensor([items[i]["true"] for i in wrong], device=device)
            for i, e in zip(wrong, explainer.explain(x[pick], answer_from=answers[pick], targets=true)):
                reports[i].true_class = e
        return reports

    def finish(self, path, item, explained):
        """Draw and write the picture and its side files; the note (or None)."""
        from cvtools.io.atomic import save_image
        from cvtools.visualize.explain import draw_explanation

        explainer, result, out = self.explainer, explained.explanation, item["out"]
        picture = draw_explanation(item["photo"], result, explainer.methods, self.colormap, self.alpha,
                                   captions=self.captions, name=Path(path).name)
        true = getattr(explained, "true_class", None)
        if true is not None:  # predicted above, true class below
            from cvtools.visualize.render import stack_rows

            picture = stack_rows([picture, draw_explanation(item["photo"], true, explainer.methods, self.colormap,
                                                            self.alpha, captions=self.captions, name="true class")])
        if item["true"] is not None:
            self.verdicts.append((str(path), result.label, explainer.backbone.categories[item["true"]]))
        save_image(out, picture, quality=92, outputs=self.outputs)
        written = [str(out)] + self._write_sides(item, explained)
        for m, scores in (explained.metrics or {}).items():
            self.summary[m].append(scores)
        truth_json, truth_text = {}, ""
        if item["true"] is not None:
            name = explainer.backbone.categories[item["true"]]
            truth_json = {"true": item["true"], "true_label": name, "correct": true is None}
            truth_text = " (right)" if true is None else f" · true {name} ({item['true']}) {true.probability:.1%}"
        if self.on_result is not None:
            self.on_result({"path": str(path), "outputs": written, **explained.to_json(), **truth_json})
        if self.quiet:
            return None
        return "\n".join([f"{path}: {explained.headline}{truth_text} -> {out}"]
                         + [f"  {line}" for line in explained.details()])

    def _write_sides(self, item, explained):
        """The raw maps and the sanity grid beside the picture: their paths."""
        from cvtools.io.atomic import save_image

        written = []
        sides = item["sides"]
        for m in self.methods if self.raw else []:
            from cvtools.visualize.render import resize_maps

            array = explained.explanation.attributions[m]
            save_array(sides[m], array if self.raw_size == "analysis" else resize_maps(array, item["full"][::-1]),
                       self.overwrite)
            written.append(str(sides[m]))
        if explained.sanity is not None:
            from cvtools.visualize.sanity import draw_sanity

            save_image(sides["sanity"], draw_sanity(item["photo"], explained.sanity, self.explainer.methods,
                                                    self.colormap, captions=self.captions),
                       quality=92, outputs=self.outputs)
            written.append(str(sides["sanity"]))
        return written


def true_classes(explainer, truth):
    """The photos' true classes for ``truth`` ('folders' or a CSV of file,class rows), read when
    first needed (the class names are the explainer's backbone's)."""
    from cvtools.deferred import Deferred

    def read():
        from cvtools.visualize.truth import TrueClasses

        categories = explainer.backbone.categories
        return TrueClasses.from_folders(categories) if truth == "folders" else TrueClasses.from_file(truth, categories)

    return Deferred(read)


def side_outputs(out, methods, raw, sanity):
    """Files written next to the picture: the raw maps (``raw``) and the sanity grid."""
    sides = {}
    if raw:
        for m in methods:
            sides[m] = out.with_name(f"{out.stem}.npy" if len(methods) == 1 else f"{out.stem}_{file_slug(m)}.npy")
    if sanity:
        sides["sanity"] = out.with_name(f"{out.stem}_sanity{out.suffix}")
    return sides


def save_array(path, tensor, overwrite):
    """A float32 .npy, atomically, never over an existing file unless ``overwrite``."""
    import numpy as np

    from cvtools.io.atomic import atomic_write

    array = tensor.numpy().astype(np.float32)

    def write(tmp):
        with open(tmp, "wb") as f:
            np.save(f, array)

    atomic_write(path, write, overwrite=overwrite)


def batch_sizes(device, batch_size=None, internal_batch_size=None):
    """The defaults of both batch sizes: 64 photos and 256 copies per pass on a GPU, 8 and 32 on
    the CPU (decided without importing torch)."""
    from cvtools.device import expects_gpu

    gpu = expects_gpu(device)
    return batch_size or (64 if gpu else 8), internal_batch_size or (256 if gpu else 32)


def explain_files(inputs: Union[str, Path, Sequence[Union[str, Path]]], output: Optional[Union[str, Path]] = None,
                  methods: Union[str, Sequence[str]] = "gradcam", *, target=None, layer: Optional[str] = None,
                  truth: Optional[str] = None, raw: bool = False, raw_size: str = "photo",
                  colormap: Optional[str] = None, alpha: float = 0.7, captions: bool = True,
                  size: Optional[int] = None, batch_size: Optional[int] = None,
                  internal_batch_size: Optional[int] = None, samples: int = 32, noise: float = 0.15,
                  steps="auto", window: Optional[int] = None, seed: int = 0, metrics: bool = False,
                  sanity: bool = False, overwrite: bool = False, backbone: str = "efficientnet_lite0",
                  device: str = "auto", precision: str = "auto", max_pixels: Optional[int] = -1,
                  on_note: Optional[Callable[[str], None]] = None, on_result: Optional[Callable[[dict], None]] = None,
                  progress: Optional[Callable[[int, int], None]] = None):
    """Explain photos (files, folders, glob patterns) with attribution ``methods`` ("gradcam",
    "gradcam,smoothgrad", a list, or "all") and write each picture as ``cvtools visualize METHOD``
    does: ``STEM_METHODS.jpg`` (``.png`` for other inputs) next to its input, or in ``output``,
    tagged with the provenance marker, atomically; a re-run skips the finished ones
    (``overwrite=True`` redoes them). ``target``: None (each photo's top class), an ImageNet index
    or class name; ``truth``: "folders" or a CSV of file,class rows (a misclassified photo is
    explained for its true class too); ``raw``: the maps as .npy beside the picture
    (``raw_size``: "photo" or "analysis"); ``metrics``, ``sanity``: the trust checks; the rest as
    the command's options. ``on_note(message)``: notes and per-file errors; ``on_result(record)``:
    each photo's class, probability, outputs and checks (the command's ``--json`` line);
    ``progress(done, total)``: after each photo. Returns the :class:`cvtools.batch.BatchReport`."""
    from cvtools.batch import run
    from cvtools.deferred import Deferred
    from cvtools.io.discover import find_inputs
    from cvtools.io.markers import Provenance
    from cvtools.io.naming import Outputs

    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    names, spec, target = _checked(methods, backbone, target, layer, truth)
    batch_size, internal = batch_sizes(device, batch_size, internal_batch_size)

    def build():
        from cvtools.backbones import load_backbone
        from cvtools.visualize.explain import Explainer, precision_for

        network = load_backbone(backbone, device=device, precision=precision_for(names, precision))
        return Explainer(network, names, target=target, layer=layer, internal_batch_size=internal, samples=samples,
                         noise=noise, seed=seed, steps=steps, window=window)

    explainer = Deferred(build)  # built when the first photo reaches the device (none if all are done)
    found = find_inputs([str(i) for i in inputs])
    options = dict(methods=names, backbone=backbone, target=target, layer=layer, truth=truth, raw=raw,
                   raw_size=raw_size, colormap=colormap, alpha=alpha, captions=captions, size=size, samples=samples,
                   noise=noise, steps=steps, window=window, seed=seed, metrics=metrics, sanity=sanity)
    outputs = Outputs(Provenance("explain_files", options))
    work = explain_work(explainer, names, preprocessing=spec.preprocessing,
                        output=None if output is None else str(output), size=size, many=found.many,
                        overwrite=overwrite, inputs=found.paths, outputs=outputs, max_pixels=max_pixels, raw=raw,
                        raw_size=raw_size, colormap=colormap, alpha=alpha, captions=captions, metrics=metrics,
                        sanity=sanity, truths=true_classes(explainer, truth) if truth is not None else None,
                        batch_size=batch_size, quiet=True, on_result=on_result)

    def failed(path, message, exc):
        if on_note is not None:
            on_note(message)

    return run(found, work, outputs=outputs, on_note=on_note, on_fail=failed, progress=progress)


def _checked(methods, backbone, target, layer, truth):
    """explain_files' settings checked without torch (a mistake answers before any file is
    read): the method names, the backbone's registry spec and the class target."""
    from cvtools.backbones.categories import parse_class_target
    from cvtools.backbones.registry import get_spec
    from cvtools.errors import UsageError

    names = parse_methods(methods if isinstance(methods, str) else ",".join(methods))
    if not names:
        raise UsageError("no method given", param="methods")
    spec = get_spec(backbone)
    target = target if target is None or isinstance(target, int) else parse_class_target(target)
    if truth is not None and target is not None:
        raise UsageError("truth explains each photo's predicted and true class; leave out target", param="truth")
    if truth not in (None, "folders") and not Path(truth).is_file():
        raise UsageError(f"'folders' or a labels file; {truth!r} is neither", param="truth")
    if layer is not None:
        spec.check_layers([layer])
    return names, spec, target
