"""Attribution maps as a library job: what ``cvtools visualize METHOD`` does to each photo of a
folder (a captioned overlay or a panel of methods, with the raw maps, the sanity grid and the
trust measures on request), for :func:`cvtools.batch.run`, batched on the device.

Imports no torch at import time (the command line names its outputs with :func:`output_suffix`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Union

from cvtools.batch import BatchedWork
from cvtools.visualize.catalog import METHOD_SEPARATOR, file_slug, parse_methods


def output_suffix(methods):
    """What the picture's name ends with: the methods (up to three, joined by
    :data:`~cvtools.visualize.catalog.METHOD_SEPARATOR`), else ``methods``."""
    return METHOD_SEPARATOR.join(file_slug(m) for m in methods) if len(methods) <= 3 else "methods"


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
    the sanity grid beside it; main thread, input order), decode (``max_pixels``; on loader threads), explain batches of same-size photos with
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
    return ExplainWork(stages.prepare, stages.compute, stages.finish, batch_size, load=stages.load,
                       verdicts=stages.verdicts, summary=stages.summary)


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
        """Name the outputs (main thread, input order: claimed before the work)."""
        from cvtools.deferred import resolve
        from cvtools.io.naming import notes_held, output_path_for, side_output_for

        ext = ".jpg" if Path(path).suffix.lower() in (".jpg", ".jpeg") else ".png"
        with notes_held(self.outputs) as held:
            out = output_path_for(path, self.output, output_suffix(self.methods), ext=ext, many=self.many,
                                  overwrite=self.overwrite, inputs=self.inputs, outputs=self.outputs)
            sides = side_outputs(out, self.methods, self.raw, self.sanity)
            for side in sides.values():  # claimed like the main output, before the work
                side_output_for(side, path, overwrite=self.overwrite, inputs=self.inputs, outputs=self.outputs)
            if held:  # "writing NAME-2.jpg" only once the explainer builds: a --model's --layer is checked then
                resolve(self.explainer)
        return dict(path=path, out=out, sides=sides)

    def load(self, item):
        """Decode and make the tensors (a loader thread: a folder's photos decode in parallel)."""
        from PIL import Image

        from cvtools.io.decode import load_image

        path = item["path"]
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
        item.update(photo=photo, x=x, answer=answer, full=full, true=true)
        return item

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

            array = explained.explanation.attributions.get(m)
            if array is None:  # a method of `all` this network cannot run (the explainer said so once)
                continue
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


def network_files(model=None, model_options=None, weights=None) -> List[Path]:
    """The files a run reads its network from: a ``model`` file, its ``classes`` file (in
    ``model_options``), a ``weights`` file. Outputs never replace them, not even with overwrite:
    they go with the inputs to the output naming, which treats them as inputs (an output named
    like the weights file would otherwise write a picture over them)."""
    paths = [model, (model_options or {}).get("classes"), weights]
    return [Path(p) for p in paths if isinstance(p, (str, Path)) and Path(p).is_file()]


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
                  model=None, model_options: Optional[dict] = None, device: str = "auto", precision: str = "auto",
                  max_pixels: Optional[int] = -1,
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
    the command's options. ``model``: your own network instead of ``backbone``, as the command's
    ``--model`` (a state dict, TorchScript or .pt2 file, or an ``nn.Module``), with
    ``model_options``, :func:`cvtools.backbones.load_user_model`'s (``architecture``, ``classes``,
    ``input_size``, ``mean``, ``std``, ``multi_label``, ``trust_pickle``, ``architecture_kwargs``);
    ``target`` and ``truth`` name its own classes. ``on_note(message)``: notes and per-file errors; ``on_result(record)``:
    each photo's class, probability, outputs and checks (the command's ``--json`` line);
    ``progress(done, total)``: after each photo. Returns the :class:`cvtools.batch.BatchReport`."""
    from cvtools.batch import run
    from cvtools.deferred import Deferred
    from cvtools.io.decode import checked_size
    from cvtools.io.discover import find_inputs
    from cvtools.io.naming import Outputs

    size = checked_size(size, 32, 2048)  # the command's --size range, before anything is read
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    given_target = target
    names, spec, target = _checked(methods, backbone, model, model_options, target, layer, truth)
    batch_size, internal = batch_sizes(device, batch_size, internal_batch_size)
    network = network_loader(backbone, model, model_options, device, precision, names)

    def build():
        from cvtools.visualize.explain import Explainer

        return Explainer(network(), names, target=target, layer=layer, internal_batch_size=internal,
                         samples=samples, noise=noise, seed=seed, steps=steps, window=window,
                         optional=_from_all(methods), on_note=on_note)

    explainer = Deferred(build)  # built when the first photo reaches the device (none if all are done)
    found = find_inputs([str(i) for i in inputs]).refuse_videos("visualize")
    outputs = Outputs(explain_provenance(
        methods, target=given_target, layer=layer, truth=truth, raw=raw, raw_size=raw_size, colormap=colormap,
        alpha=alpha, captions=captions, size=size, samples=samples, noise=noise, steps=steps, window=window,
        seed=seed, metrics=metrics, sanity=sanity, backbone=backbone, model=model, model_options=model_options))
    work = explain_work(explainer, names, preprocessing=spec.preprocessing if spec is not None else None,
                        output=None if output is None else str(output), size=size, many=found.many,
                        overwrite=overwrite, inputs=list(found.paths) + network_files(model, model_options),
                        outputs=outputs, max_pixels=max_pixels, raw=raw,
                        raw_size=raw_size, colormap=colormap, alpha=alpha, captions=captions, metrics=metrics,
                        sanity=sanity, truths=true_classes(explainer, truth) if truth is not None else None,
                        batch_size=batch_size, quiet=True, on_result=on_result)
    return run(found, work, outputs=outputs, on_note=on_note, on_fail=_note_failure(on_note), progress=progress)


def _from_all(methods):
    """The methods ``all`` brought in (catalog.only_from_all) of a string or list of method specs."""
    from cvtools.visualize.catalog import only_from_all

    return only_from_all(methods if isinstance(methods, str) else ",".join(methods))


def _checked(methods, backbone, model, model_options, target, layer, truth):
    """explain_files' settings checked without torch (a mistake answers before any file is
    read): the method names, the backbone's registry spec (None for a user's model or a loaded
    network) and the class target."""
    from cvtools.errors import UsageError

    names = parse_methods(methods if isinstance(methods, str) else ",".join(methods))
    if not names:
        raise UsageError("no method given", param="methods")
    spec = checked_network(backbone, model, model_options)
    target = class_target(target, spec)
    if truth is not None and target is not None:
        raise UsageError("truth explains each photo's predicted and true class; leave out target", param="truth")
    if truth not in (None, "folders") and not Path(truth).is_file():
        raise UsageError(f"'folders' or a labels file; {truth!r} is neither", param="truth")
    if layer is not None and spec is not None:
        spec.check_layers([layer])
    return names, spec, target


#: What ``model_options`` may hold: :func:`cvtools.backbones.load_user_model`'s own options.
MODEL_OPTIONS = ("architecture", "classes", "input_size", "mean", "std", "multi_label", "trust_pickle",
                 "architecture_kwargs")


def checked_network(backbone, model=None, model_options=None):
    """The network an API call names, checked without torch: the registry spec of ``backbone``
    (a registered name), or None for a loaded network or a user's ``model`` (its file must
    exist; ``model_options`` must be :data:`MODEL_OPTIONS`)."""
    from cvtools.errors import UsageError, did_you_mean, safe_path

    if model is None:
        if model_options:
            raise UsageError("model_options go with model (your own network)", param="model_options")
        if not isinstance(backbone, str):
            return None  # a loaded network
        from cvtools.backbones.registry import get_spec

        return get_spec(backbone)
    for key in model_options or {}:
        if key not in MODEL_OPTIONS:
            hint = did_you_mean(key, MODEL_OPTIONS) or f"; choose from {', '.join(MODEL_OPTIONS)}"
            raise UsageError(f"model_options: unknown option {key!r}{hint}", param="model_options")
    if isinstance(model, (str, Path)) and not Path(model).is_file():
        what = "a directory" if Path(model).is_dir() else "no such file"
        raise UsageError(f"model {safe_path(model)}: {what}", param="model")
    return None


def class_target(target, spec):
    """``target`` as the explainer takes it: None (each photo's top class), a class index, or for
    a registered backbone (``spec``) an ImageNet class name looked up now (a typo answers at
    once); for other networks a name stays a name, looked up in their own classes once loaded."""
    from cvtools.backbones.categories import parse_class_target

    if target is None or (isinstance(target, int) and not isinstance(target, bool)):
        return target
    if spec is not None:
        return parse_class_target(target)
    text = str(target).strip()
    if text.lower() in ("", "top1", "top", "auto"):
        return None
    return int(text) if text.isdigit() else text


def network_loader(backbone, model=None, model_options=None, device="auto", precision="auto", methods=None):
    """A function that loads the network an API call names: ``model`` (the user's own, through
    :func:`cvtools.backbones.load_user_model` with ``model_options``), else ``backbone`` (a
    registered name through :func:`cvtools.backbones.load_backbone`, or a loaded network, given
    back as it is). With ``methods``, "auto" precision is fp32 when one of them needs it
    (:func:`cvtools.visualize.explain.precision_for`)."""

    def load():
        from cvtools.visualize.explain import precision_for

        wanted = precision_for(methods, precision) if methods else precision
        if model is not None:
            from cvtools.backbones import load_user_model

            return load_user_model(model, device=device, precision=wanted, **(model_options or {}))
        if not isinstance(backbone, str):
            return backbone
        from cvtools.backbones import load_backbone

        return load_backbone(backbone, device=device, precision=wanted)

    return load


def explain_provenance(methods, *, target=None, layer=None, truth=None, raw=False, raw_size="photo", colormap=None,
                       alpha=0.7, captions=True, size=None, samples=32, noise=0.15, steps="auto", window=None, seed=0,
                       metrics=False, sanity=False, backbone="efficientnet_lite0", model=None, model_options=None):
    """What the outputs of :func:`explain_files` record: the provenance ``cvtools visualize
    METHODS`` records for the same settings (the command line's options, as click parses them),
    so that a folder done by either is done for the other."""
    from cvtools.io.markers import Provenance

    options = {"--target": "top1" if target is None else str(target), "--layer": layer, "--methods": None,
               "--raw": bool(raw), "--raw-size": raw_size, "--colormap": colormap, "--alpha": float(alpha),
               "--no-caption": not captions, "--size": None if size is None else int(size),
               "--samples": int(samples), "--noise": float(noise), "--steps": steps if steps == "auto" else int(steps),
               "--window": None if window is None else int(window), "--seed": int(seed), "--sanity": bool(sanity),
               "--metrics": bool(metrics), **network_options(backbone, model, model_options)}
    if truth is not None:
        options["--truth"] = str(truth)  # an option added later: recorded only when given
    command = methods if isinstance(methods, str) else ",".join(methods)
    return Provenance(f"visualize {command.strip()}", options)


def network_options(backbone="efficientnet_lite0", model=None, model_options=None) -> dict:
    """The model options a command line records for a network an API call names (``--model`` and
    its options only when given, as options added later)."""
    options = {"--backbone": backbone if isinstance(backbone, str) else backbone.name, "--weights": None}
    if model is None:
        return options
    given = dict(model_options or {})
    options["--model"] = str(model)
    for key in ("architecture", "classes", "input_size", "mean", "std"):
        if given.get(key) is not None:
            value = given[key]
            options["--" + key.replace("_", "-")] = [float(v) for v in value] if key in ("mean", "std") else value
    if given.get("multi_label"):
        options["--multi-label"] = True
    return options


def activations_provenance(*, layer=None, channels=None, top=31, size=None, colormap="viridis",
                           backbone="efficientnet_lite0", model=None, model_options=None):
    """What the outputs of :func:`activations_files` record: the provenance ``cvtools visualize
    activations`` records for the same settings, so that a folder done by either is done for the
    other."""
    from cvtools.io.markers import Provenance

    return Provenance("visualize activations", {
        "--layer": layer, "--channels": None if channels is None else str(channels), "--top": int(top),
        "--size": None if size is None else int(size), "--colormap": colormap,
        **network_options(backbone, model, model_options)})


# ----------------------------------------------------------------------------- scorecard


@dataclass
class ScoreWork(BatchedWork):
    """The job :func:`score_work` makes: a :class:`~cvtools.batch.BatchedWork` that adds one row
    per photo to ``card`` (a :class:`~cvtools.visualize.score.Scorecard`); nothing is written."""

    card: object = None


def score_work(backbone, methods, *, target=None, layer=None, sanity_images=8, road=True, size=None,
               batch_size=None, internal_batch_size=None, samples=32, steps=50, seed=0, max_pixels=-1,
               on_note=None, optional=(), on_stage=None) -> ScoreWork:
    """What ``cvtools visualize score`` does to each photo: decode (``max_pixels``), then in
    batches of same-size photos every method's map and every trust measure
    (:func:`~cvtools.visualize.score.score_batch`), the model-randomisation check on the first
    ``sanity_images`` photos; the rows go into the job's ``card``. ``backbone``: a loaded
    :class:`~cvtools.backbones.base.Backbone`; ``target``: None (each photo's top class), a class
    index or name among its classes; ``size``: the short side the network sees (default its crop);
    batch sizes default to 32 photos and 256 copies per pass on a GPU, 4 and 32 on the CPU.
    ``on_note(message)``: a backbone whose layers cannot be re-initialised one by one gets no
    sanity check, and says so. ``optional``: the methods ``all`` brought in; those this network
    cannot run are left out with a note (a method named is a UsageError, before any photo).
    ``on_stage(message)``: as each method's map and each check starts and ends (minutes on a CPU)."""
    from cvtools.visualize.cam import check_layer_name
    from cvtools.visualize.catalog import METHOD_INFO
    from cvtools.visualize.methods import usable_methods
    from cvtools.visualize.model import checked_target
    from cvtools.visualize.score import Scorecard

    names = usable_methods(list(methods), backbone, optional, layer, on_note)
    target = checked_target(target, backbone.categories)
    if any(METHOD_INFO[m].uses_layer for m in names):  # a bad --layer: now, not from each photo's forward
        check_layer_name(backbone, layer, "cam", feature_map=True)
    if sanity_images and not backbone.layer_paths:  # its layers cannot be re-initialised one by one
        if on_note is not None:
            on_note(f"{backbone.name}: no sanity check ({backbone.layers_note or 'no layers'})")
        sanity_images = 0
    gpu = backbone.device.type != "cpu"
    size = size or backbone.preprocessing.crop_size
    batch_size = batch_size or (32 if gpu else 4)
    internal = internal_batch_size or (256 if gpu else 32)
    card = Scorecard(names, dict(backbone=backbone.name, size=size, target=target, layer=layer or backbone.defaults.cam,
                                 samples=samples, steps=steps, seed=seed, road=road, sanity_images=sanity_images,
                                 device=str(backbone.device)))
    stages = _ScoreStages(backbone, names, target, layer, sanity_images, road, size, internal, samples, steps, seed,
                          max_pixels, card, on_stage)
    return ScoreWork(stages.prepare, stages.compute, stages.finish, batch_size, card=card)


@dataclass
class _ScoreStages:
    """:func:`score_work`'s settings and its three stages."""

    backbone: object
    methods: List[str]
    target: object
    layer: Optional[str]
    sanity_images: int
    road: bool
    size: int
    internal: int
    samples: int
    steps: int
    seed: int
    max_pixels: Optional[int]
    card: object
    on_stage: Optional[Callable[[str], None]] = None
    done: int = 0  # photos scored so far (the first sanity_images of them get the check)

    def prepare(self, path):
        from cvtools.io.decode import load_image
        from cvtools.visualize.explain import analysis_tensor

        return dict(x=analysis_tensor(load_image(path, max_pixels=self.max_pixels).rgb, self.size), path=str(path))

    def compute(self, items):
        import torch

        from cvtools.visualize.score import score_batch

        x = torch.stack([it["x"] for it in items]).to(self.backbone.device)
        paths = [it["path"] for it in items]
        want = max(0, min(len(items), self.sanity_images - self.done))
        rows = []
        for part in ([slice(0, want), slice(want, len(items))] if 0 < want < len(items) else [slice(None)]):
            rows += score_batch(self.backbone, self.methods, x[part], paths[part], target=self.target,
                                layer=self.layer, sanity=self.done < self.sanity_images, road=self.road,
                                seed=self.seed, batch_size=self.internal, internal_batch_size=self.internal,
                                samples=self.samples, steps=self.steps, on_stage=self.on_stage)
            self.done += len(paths[part])
        return rows

    def finish(self, path, item, row):
        self.card.extend([row])
        return None


def score_files(inputs: Union[str, Path, Sequence[Union[str, Path]]], methods: Union[str, Sequence[str]] = "all", *,
                target=None, layer: Optional[str] = None, sanity_images: int = 8, road: bool = True,
                size: Optional[int] = None, batch_size: Optional[int] = None,
                internal_batch_size: Optional[int] = None, samples: int = 32, steps: int = 50, seed: int = 0,
                backbone="efficientnet_lite0", model=None, model_options: Optional[dict] = None,
                device: str = "auto", precision: str = "auto", max_pixels: Optional[int] = -1,
                on_note: Optional[Callable[[str], None]] = None,
                progress: Optional[Callable[[int, int], None]] = None):
    """Score attribution ``methods`` over photos (files, folders, glob patterns) as ``cvtools
    visualize score`` does: every method x every trust measure (deletion and insertion AUC, ROAD,
    the sanity check on the first ``sanity_images`` photos, seconds per photo) and a random map
    to beat. Nothing is written. ``backbone`` (a registered name or a loaded network), ``model``
    and ``model_options`` as :func:`explain_files`'; the rest as the command's options.
    ``on_note(message)``: notes and per-file errors; ``progress(done, total)``: after each photo.
    Returns ``(card, report)``: the :class:`~cvtools.visualize.score.Scorecard` (``table()``,
    ``to_json()``, ``means()``) and the :class:`cvtools.batch.BatchReport`."""
    from cvtools.batch import run
    from cvtools.io.decode import checked_size

    size = checked_size(size, 32, 2048)  # the command's --size range, before anything is read
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    names = parse_methods(methods if isinstance(methods, str) else ",".join(methods))
    spec = checked_network(backbone, model, model_options)
    target = class_target(target, spec)
    network = network_loader(backbone, model, model_options, device, precision, names)()
    work = score_work(network, names, target=target, layer=layer, sanity_images=sanity_images, road=road, size=size,
                      batch_size=batch_size, internal_batch_size=internal_batch_size, samples=samples, steps=steps,
                      seed=seed, max_pixels=max_pixels, on_note=on_note, optional=_from_all(methods))
    report = run([str(i) for i in inputs], work, on_note=on_note, on_fail=_note_failure(on_note), progress=progress)
    return work.card, report


def _note_failure(on_note):
    """``batch.run``'s ``on_fail`` for the Python API: each failed file's line to ``on_note``."""

    def failed(path, message, exc):
        if on_note is not None:
            on_note(message)

    return failed


# ----------------------------------------------------------------------------- activations


def activations_work(backbone, layer=None, *, channels=None, top=31, size=None, colormap="viridis", output=None,
                     many=True, overwrite=False, inputs=(), outputs=None, max_pixels=-1):
    """What ``cvtools visualize activations`` does to each photo, as a work function for
    :func:`cvtools.batch.run` (``work(path) -> note``): name ``NAME_act-LAYER.png`` with
    ``outputs`` (the run's :class:`~cvtools.io.naming.Outputs`), decode (``max_pixels``), run
    ``backbone`` (a loaded Backbone) to ``layer`` (default: its DeepDream layer) at a short side
    of ``size`` (default its crop), and write the grid of the photo and the ``channels``
    (text such as "0:16" or a :class:`~cvtools.specs.ChannelSpec`; default: the ``top`` most
    active), each tile coloured by ``colormap``."""
    from cvtools.visualize.cam import check_layer_name

    layer = check_layer_name(backbone, layer, "dream", feature_map=True)
    size = size or backbone.preprocessing.crop_size
    count = {info.name: info.channels for info in backbone.layers}.get(layer)
    if channels and count:  # channels the layer lacks: refused before an output is named and announced
        from cvtools.specs import parse_channel_spec

        parse_channel_spec(channels).resolve(count, layer=layer)

    def work(path):
        from cvtools.io.atomic import save_image
        from cvtools.io.decode import load_image
        from cvtools.io.naming import output_path_for
        from cvtools.visualize.activations import activation_grid, layer_activations, most_active
        from cvtools.visualize.explain import analysis_tensor
        from cvtools.visualize.featurevis import parse_channels

        out = output_path_for(path, output, f"act-{slug(layer)}", ext=".png", many=many, overwrite=overwrite,
                              inputs=inputs, outputs=outputs)
        x = analysis_tensor(load_image(path, max_pixels=max_pixels).rgb, size)
        acts = layer_activations(backbone, x, layer)
        picked = parse_channels(channels, acts.shape[0]) if channels else most_active(acts, top)
        title = f"{Path(path).name} · {backbone.name} {layer}: {len(picked)} of {acts.shape[0]} channels " \
                f"({acts.shape[1]}x{acts.shape[2]})" + ("" if channels else ", most active first")
        save_image(out, activation_grid(x, acts, picked, layer, colormap, title=title), outputs=outputs)
        return f"{path} -> {out}"

    return work


def activations_files(inputs: Union[str, Path, Sequence[Union[str, Path]]], output: Optional[Union[str, Path]] = None,
                      *, layer: Optional[str] = None, channels=None, top: int = 31, size: Optional[int] = None,
                      colormap: str = "viridis", overwrite: bool = False, backbone="efficientnet_lite0", model=None,
                      model_options: Optional[dict] = None, device: str = "auto", precision: str = "auto",
                      max_pixels: Optional[int] = -1, on_note: Optional[Callable[[str], None]] = None,
                      progress: Optional[Callable[[int, int], None]] = None):
    """A grid of a layer's feature maps for each photo (files, folders, glob patterns), written as
    ``cvtools visualize activations`` does: ``STEM_act-LAYER.png`` next to its input or in
    ``output``, marked, atomically; a re-run skips the finished ones (``overwrite=True`` redoes
    them). ``layer`` (default: the network's DeepDream layer), ``channels`` ("0:16", "3,7,12";
    default: the ``top`` most active), ``size``, ``colormap`` as the command's options;
    ``backbone``, ``model``, ``model_options`` as :func:`explain_files`'. ``on_note(message)``:
    notes and per-file errors; ``progress(done, total)``: after each photo. Returns the
    :class:`cvtools.batch.BatchReport`."""
    from cvtools.batch import run
    from cvtools.io.decode import checked_size
    from cvtools.io.discover import find_inputs
    from cvtools.io.naming import Outputs
    from cvtools.specs import parse_channel_spec

    size = checked_size(size, 32, 2048)  # the command's --size range, before anything is read
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    checked_network(backbone, model, model_options)
    channels = parse_channel_spec(channels) if channels is not None else None  # a typo answers now
    found = find_inputs([str(i) for i in inputs]).refuse_videos("visualize")
    check_output_name(output, found.many)  # before the network loads, not once per photo after it
    network = network_loader(backbone, model, model_options, device, precision)()
    outputs = Outputs(activations_provenance(layer=layer, channels=channels, top=top, size=size, colormap=colormap,
                                             backbone=backbone, model=model, model_options=model_options))
    work = activations_work(network, layer, channels=channels, top=top, size=size, colormap=colormap,
                            output=None if output is None else str(output), many=found.many, overwrite=overwrite,
                            inputs=list(found.paths) + network_files(model, model_options), outputs=outputs,
                            max_pixels=max_pixels)
    return run(found, work, outputs=outputs, on_note=on_note, on_fail=_note_failure(on_note), progress=progress)


def slug(text):
    """``text`` as a part of a file name: runs of other characters than letters, digits, '.',
    '_' and '-' become one '-'."""
    import re

    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "x"


# ----------------------------------------------------------------------------- filters


@dataclass
class FilterPlan:
    """What :func:`render_filters` optimises: the objective per chunk of ``indices``, the tiles'
    ``labels``, the picture's ``title`` and file ``name`` (without extension)."""

    indices: List[int]
    labels: List[str]
    title: str
    name: str
    make: Callable


def classes_name(backbone_name: str, indices) -> str:
    """``classes_BACKBONE_1+985``: the class indices joined by "+", a list that cannot read as a
    range (it was ``1-985``); a long list keeps its beginning and a hash of the whole
    (:func:`~cvtools.io.naming.fitting_suffix`), so two long lists still get different names."""
    from cvtools.io.naming import fitting_suffix

    return f"classes_{backbone_name}_{fitting_suffix('+'.join(str(i) for i in indices))}"


def filter_plan(backbone, layer=None, channels="0:16", classes=None, neuron=False) -> FilterPlan:
    """The channels of ``layer`` (default: the backbone's DeepDream layer; ``channels``: text such
    as "0:16" or a :class:`~cvtools.specs.ChannelSpec`; ``neuron``: the centre unit only), or the
    class logits ``classes`` ("goldfish,281" or a list of indices and names) when given."""
    from cvtools.backbones.categories import class_index
    from cvtools.errors import UsageError
    from cvtools.visualize.featurevis import objectives, parse_channels

    if classes:
        wanted = classes.split(",") if isinstance(classes, str) else [str(c) for c in classes]
        indices = [class_index(c.strip(), backbone.categories) for c in wanted if c.strip()]
        if not indices:
            raise UsageError("classes needs at least one class index or name", param="classes")
        return FilterPlan(indices, [f"{backbone.categories[i]} ({i})" for i in indices],
                          f"{backbone.name} class logits", classes_name(backbone.name, indices), objectives.class_logit)
    from cvtools.specs import parse_channel_spec

    channels = parse_channel_spec(channels)
    from cvtools.visualize.cam import check_layer_name

    layer = check_layer_name(backbone, layer, "dream")
    count = {info.name: info.channels for info in backbone.layers}[layer]
    indices = parse_channels(channels, count)

    def make(chunk, layer=layer):
        return objectives.neuron(layer, chunk) if neuron else objectives.channel(layer, chunk)

    return FilterPlan(indices, [f"{layer}:{c}" for c in indices],
                      f"{backbone.name} {layer}{' centre neurons' if neuron else ''}",
                      f"filters_{backbone.name}_{slug(layer)}_{channels_name(indices)}{'_neurons' if neuron else ''}",
                      make)


def channels_name(indices) -> str:
    """The channels as a file name says them, from the indices themselves (not the text asked
    with, where "0:16", a slice, and "0-16", a range that includes 16, both read "0-16", and "3,7"
    read as "3-7"): runs of consecutive channels "first-last" (both included), joined by "+":
    ``0-15``, ``3+7+12``, ``0-3+8``; a long list is shortened with a hash
    (:func:`~cvtools.io.naming.fitting_suffix`)."""
    from cvtools.io.naming import fitting_suffix

    runs, start = [], None
    for i, c in enumerate(indices):
        if start is None:
            start = c
        if i + 1 == len(indices) or indices[i + 1] != c + 1:
            runs.append(str(c) if c == start else f"{start}-{c}")
            start = None
    return fitting_suffix("+".join(runs))


def fp32_unless_asked(precision):
    """Optimising pixels needs gradients in fp32 (fp16 ones underflow); the network is small
    enough at these sizes that fp32 costs little on a GPU: "auto" is "fp32"."""
    return "fp32" if precision == "auto" else precision


def check_output_name(output, many: bool = False) -> None:
    """``output`` (``-o``) checked before any work: a file name (not a folder: an existing one, a
    path ending in "/", or ``many`` inputs) must have an image extension cvtools writes; an
    ImageError naming it otherwise (after minutes of rendering, the result would be lost)."""
    from cvtools.io.naming import FORMATS, unknown_image_format

    if output is None or many or Path(output).is_dir() or str(output).endswith(("/", os.sep)):
        return
    if Path(output).suffix.lower() not in FORMATS:
        raise unknown_image_format(output)


def filters_target(name, output=None, overwrite=False, protected=()) -> Path:
    """Where :func:`render_filters` writes ``name``: ``NAME.png`` here, or in ``output`` (a
    directory, or a path ending in "/"), or ``output`` itself; an existing file only with
    ``overwrite``, never one of ``protected`` (the network's files: :func:`network_files`)."""
    from cvtools.errors import ImageError

    target = Path(output) if output else Path(f"{name}.png")
    if output and (target.is_dir() or str(output).endswith("/")):
        target = target / f"{name}.png"
    if any(target.exists() and os.path.samefile(target, p) for p in protected):
        raise ImageError(target, "output would overwrite a file the network is read from; choose another output path")
    if target.exists() and not overwrite:
        raise ImageError(target, "output exists; pass overwrite=True to replace it", param="overwrite")
    return target


def render_filters(backbone="efficientnet_lite0", output=None, *, layer=None, channels="0:16", classes=None,
                   neuron=False, size=None, steps=None, lr=0.03, seed=0, batch_size=16, fft=True, decorrelate=True,
                   transforms=True, overwrite=False, device="auto", precision="auto",
                   progress: Optional[Callable[[int, int], None]] = None, protected=()) -> Path:
    """Images that excite each channel of ``layer`` (or each class logit of ``classes``), as
    ``cvtools visualize filters`` makes them: a labelled grid written to
    ``filters_BACKBONE_LAYER_CHANNELS.png`` (channels as :func:`channels_name` says them; ``classes_BACKBONE_1+985.png``), or into ``output``;
    returns its path. ``backbone``: a registered name (loaded on ``device`` in ``precision``;
    "auto" is fp32 here: fp16 gradients underflow, and the network is small at these sizes) or a
    loaded Backbone. ``size``, ``steps``: default 128 px and 128 steps for channels, 224 and 256
    for classes; ``fft``, ``decorrelate``, ``transforms``: lucid's parameterisation and
    robustness (see :func:`cvtools.visualize.featurevis.render`). ``progress(done, total)``:
    after each optimisation step. ``protected``: files the output may never replace (the network's own)."""
    import torch

    from cvtools.io.atomic import save_image
    from cvtools.io.decode import checked_size
    from cvtools.visualize.featurevis import ImageParam, labelled_grid, render

    size = checked_size(size, 32, 1024)  # the command's --size range, before the network loads
    check_output_name(output)
    if isinstance(backbone, str):
        from cvtools.backbones import load_backbone

        backbone = load_backbone(backbone, device=device, precision=fp32_unless_asked(precision))
    plan = filter_plan(backbone, layer, channels, classes, neuron)
    size = size or (224 if classes else 128)
    steps = steps or (256 if classes else 128)
    target = filters_target(plan.name, output, overwrite, protected)
    chunks = [plan.indices[i:i + batch_size] for i in range(0, len(plan.indices), batch_size)]
    total, done, images = steps * len(chunks), 0, []
    if progress is not None:
        progress(0, total)
    for chunk in chunks:
        param = ImageParam(size, batch=len(chunk), fft=fft, decorrelate=decorrelate, seed=seed)

        def step(_, base=done):
            if progress is not None:
                progress(base + _ + 1, total)

        vis = render(backbone, plan.make(chunk), batch=len(chunk), size=size, steps=steps, lr=lr, param=param,
                     transforms=("class" if classes else "standard") if transforms else None, seed=seed,
                     progress=step)
        images.append(vis.images)
        done += steps
    picture = labelled_grid(torch.cat(images), plan.labels, title=f"{plan.title} · {size} px · {steps} steps",
                            tile=128)
    save_image(target, picture)
    return target
