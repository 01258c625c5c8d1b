"""``cvtools visualize``: attribution maps (``visualize METHOD INPUT...``) and feature visualization
(``visualize filters``, ``visualize activations``).

Every attribution method is a subcommand, built from the method table in
:mod:`cvtools.visualize.catalog`; ``a,b,c`` and ``all`` give side-by-side panels. The engine is
:mod:`cvtools.visualize`; each command's work is a library job (:mod:`cvtools.visualize.job`,
also behind ``cvtools.explain_files``, ``score_files``, ``activations_files`` and
``render_filters``); this module parses options, builds the job and shows progress.
"""

from __future__ import annotations

import json
import os

import click

from cvtools.cli.common import (
    AddedLaterOption,
    finish,
    load_backbone_from_options,
    max_pixels_option,
    model_options,
    output_options,
    quiet_option,
    run_batch,
    run_outputs,
)
from cvtools.cli.params import CHANNELS_HELP, Channels, Target
from cvtools.cli.params import class_target as _parsed_class_target
from cvtools.visualize.catalog import ALL, METHOD_INFO, TRANSFORMER_ONLY, only_from_all, parse_methods
from cvtools.visualize.job import output_suffix

COLORMAP_CHOICES = ["jet", "turbo", "inferno", "viridis", "magma", "gray"]  # = colormaps.COLORMAPS (no numpy here)

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

GROUP_HELP = """Explain what a network sees: attribution maps and feature visualization.

\b
Attribution maps (where in the image is the evidence for a class):
  cvtools visualize gradcam photo.jpg                  Grad-CAM overlay -> photo_gradcam.jpg
  cvtools visualize gradcam,smoothgrad photo.jpg       side-by-side panel (or -m smoothgrad)
  cvtools visualize all photo.jpg                      every method in one panel
  cvtools visualize gradcam photos/ -o maps/           a folder, batched on the device
  cvtools visualize gradcam dog.jpg --target "tennis ball"   explain another class
  cvtools visualize gradcam photo.jpg --metrics --sanity     can this map be trusted?
  cvtools visualize score photos/ -m gradcam,scorecam,saliency   methods x trust measures

\b
Feature visualization (what a unit responds to):
  cvtools visualize filters --layer blocks.8 --channels 0:16   images that excite channels
  cvtools visualize filters --class goldfish,281               images a class logit likes
  cvtools visualize activations --layer blocks.4 photo.jpg     a layer's feature maps

`cvtools visualize METHOD --help` explains each method and its options; `cvtools layers`
lists the layer names.
"""


def class_target(text, model_opts):
    """--target as :func:`cvtools.cli.params.class_target` checks it, with a looser suggestion for
    a mistyped ImageNet class name (:func:`~cvtools.visualize.catalog.class_name_hint`)."""
    try:
        return _parsed_class_target(text, model_opts)
    except click.BadParameter as exc:
        from cvtools.backbones.categories import imagenet_categories
        from cvtools.errors import UsageError
        from cvtools.visualize.catalog import with_class_hint

        better = str(with_class_hint(UsageError(exc.message), text, imagenet_categories()))
        if better == exc.message:
            raise
        raise click.BadParameter(better, param_hint=exc.param_hint) from None


class VisualizeGroup(click.Group):
    """Subcommands: one per attribution method (also ``a,b,c`` panels and ``all``), plus the
    feature-visualization commands registered on the group."""

    def list_commands(self, ctx):
        return ALL + list(TRANSFORMER_ONLY) + ["all"] + sorted(self.commands)

    def get_command(self, ctx, name):
        if name in self.commands:
            return self.commands[name]
        try:
            methods = parse_methods(name)
        except Exception:  # not a method: click reports "no such command"
            return None
        return attribution_command(name, methods) if methods else None

    def resolve_command(self, ctx, args):
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            from cvtools.errors import did_you_mean

            known = self.list_commands(ctx)
            unknown = [part for part in name.split(",") if part.strip() and self.get_command(ctx, part.strip()) is None]
            word = unknown[0].strip() if unknown else name
            hint = did_you_mean(word, known) or f"; choose from {', '.join(known)}"
            raise click.UsageError(f"no method or command {word!r}{hint}", ctx)
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx, formatter):
        rows = [(name, METHOD_INFO[name].summary) for name in ALL]
        rows.append(("all", "every method above, side by side"))
        rows += [(name, METHOD_INFO[name].summary) for name in TRANSFORMER_ONLY]
        with formatter.section("Methods (cvtools visualize METHOD INPUT...)"):
            formatter.write_dl(rows)
        extra = [(name, self.commands[name].get_short_help_str(70)) for name in sorted(self.commands)]
        if extra:
            with formatter.section("Feature visualization and scoring"):
                formatter.write_dl(extra)


@click.group(cls=VisualizeGroup, help=GROUP_HELP, context_settings=CONTEXT)
def visualize():
    pass


# ----------------------------------------------------------------------------- attribution


def _method_help(name, methods):
    if len(methods) == 1:
        info = METHOD_INFO[methods[0]]
        head = f"{info.title}: {info.summary}."
    else:
        head = "Side-by-side panel: " + ", ".join(METHOD_INFO[m].title for m in methods) + "."
    example = name if len(name) < 24 else "gradcam"
    return f"""{head}

Explains each image's top class (or --target) and writes a captioned heat-map overlay next to
each input as NAME_{output_suffix(methods)}.jpg (or into -o); with several methods, a panel of the
photo and one tile per method. INPUT: files, directories (recursive) or glob patterns; images
of a similar shape run in batches on the device.

\b
Examples:
  cvtools visualize {example} photo.jpg
  cvtools visualize {example} photo.jpg -m gradcam,smoothgrad        add methods to a panel
  cvtools visualize {example} photos/ -o maps/ --raw                 + the maps as .npy
  cvtools visualize {example} cat.jpg --target "tiger cat"          class name or index
  cvtools visualize {example} photo.jpg --metrics --sanity --json   trust checks as JSON

\b
Time per 224x352 photo on one CPU thread (EfficientNet-Lite0, measured 2026-12-04 with
tools/readme_timings.py): the gradcam family 0.06 s; saliency, input-x-gradient 0.1 s; guided
backprop 0.4 s (it averages 4 grid phases); ablationcam 1.7 s; smoothgrad 0.12 s per --samples
(3.9 s at 32); integrated-gradients 0.11 s per --steps (5.6 s at 50; --steps auto runs 50, then
100, 200, 400 for an image while its completeness gap is over 5%: 5-80 s); occlusion 9 s;
scorecam 42 s.
--sanity repeats each method ~20 times (once per layer group); --metrics adds a ROAD fidelity
check per method, whose imputation took 1-2 minutes per method on a busy 2-core CPU (2026-12-07).
"""


def attribution_options(f):
    # Over one screen: a table of options, one entry each.
    options = [
        click.argument("inputs", nargs=-1, required=True, metavar="INPUT..."),
        click.option("--target", "-t", type=Target(), default="top1", show_default=True, metavar="top1|INDEX|NAME",
                     help="Class to explain: each image's top class, an ImageNet index (281) or a class "
                          "name ('tabby'; a unique part of a name works)."),
        click.option("--layer", "-l", metavar="NAME",
                     help="Layer for the CAM methods (default: the backbone's last feature map; "
                          "`cvtools layers` lists them). Earlier layers give finer, less semantic maps. On a "
                          "ViT the default is the last block's first norm (ln_1 / norm1): past the last attention "
                          "only the class token reaches the logits, and every map there is zero."),
        click.option("--methods", "-m", "more_methods", metavar="A,B,...",
                     help="More methods in the same picture, side by side ('all' for every method)."),
        click.option("--truth", metavar="folders|FILE", cls=AddedLaterOption,
                     help="Known true classes: 'folders' (DIR/<class>/photo.jpg, an ImageFolder) or a CSV of "
                          "file,class rows. A photo the network gets wrong is explained for its predicted and its "
                          "true class, one above the other; the run ends with the wrong ones listed."),
    ]
    options += [
        click.option("--raw", is_flag=True,
                     help="Also save each raw attribution as .npy (float32; 3xHxW for pixel methods, "
                          "1xHxW in [0, 1] for CAMs), at the photo's own size (resampled bilinearly)."),
        click.option("--raw-size", type=click.Choice(["photo", "analysis"]), default="photo", show_default=True,
                     help="--raw maps at the photo's size, or at the size the network saw (no resampling)."),
        click.option("--colormap", type=click.Choice(COLORMAP_CHOICES),
                     help="Heat colours (default: jet for region maps like Grad-CAM, inferno for pixel maps)."),
        click.option("--alpha", type=click.FloatRange(0, 1), default=0.7, show_default=True,
                     help="Opacity of the hottest colours (cold regions always show the photo)."),
        click.option("--no-caption", is_flag=True, help="No caption bars (class, probability, method)."),
        click.option("--size", type=click.IntRange(32, 2048), metavar="PX",
                     help="Short side of the image the network sees (default: the backbone's crop size, 224). "
                          "The picture is drawn at the photo's own proportions."),
        click.option("--batch-size", type=click.IntRange(1, 4096), metavar="N",
                     help="Images per batch on the device (default 64 on a GPU, 8 on the CPU)."),
        click.option("--internal-batch-size", type=click.IntRange(1, 65536), metavar="N",
                     help="Memory knob: noisy copies (smoothgrad), interpolation steps (integrated-gradients), "
                          "patches (occlusion) per pass over the whole batch, or masked/ablated copies per pass "
                          "(scorecam, ablationcam) (default 256 on a GPU, 32 on the CPU). Lower it if you run "
                          "out of memory."),
        click.option("--samples", type=click.IntRange(1, 10000), default=32, show_default=True,
                     help="smoothgrad: noisy copies per image."),
        click.option("--noise", type=click.FloatRange(0, 10), default=0.15, show_default=True,
                     help="smoothgrad: noise standard deviation (pixel values are 0..1)."),
        click.option("--steps", default="auto", show_default=True, metavar="auto|N", callback=_ig_steps,
                     help="integrated-gradients: interpolation steps. auto: 50, doubled (up to 400) for each "
                          "image whose completeness gap |sum(map) - (f(x) - f(baseline))| is over 5% of "
                          "f(x) - f(baseline); the gap is reported per image either way."),
        click.option("--window", type=click.IntRange(2, 4096), metavar="PX",
                     help="occlusion: patch side (default: 1/7 of the short side; stride half of it)."),
        click.option("--seed", type=int, default=0, show_default=True,
                     help="smoothgrad noise, metrics' random baseline, sanity's re-initialisation."),
        click.option("--sanity", is_flag=True,
                     help="Model-randomisation check (Adebayo et al. 2018): re-initialise the layers from the top "
                          "down on a copy of the network and report the rank correlation of each map with the "
                          "original; also writes NAME_..._sanity.jpg. A trustworthy map decorrelates."),
        click.option("--metrics", is_flag=True,
                     help="Deletion and insertion AUC of each map (Petsiuk et al. 2018) and ROAD (Rong et al. 2022: "
                          "class probability with the most / least relevant 10-90% of pixels imputed), next to "
                          "those of a random map: lower deletion and MoRF, higher insertion and LeRF than random "
                          "mean a faithful map. `cvtools visualize score DIR` tabulates them over a folder."),
        click.option("--json", "as_json", is_flag=True,
                     help="One JSON object per file on stdout (class, probability, outputs, metrics, sanity)."),
    ]
    # Decorators applied last are listed first in --help: the method's own options lead.
    f = quiet_option(max_pixels_option(model_options(output_options(f))))
    for option in reversed(options):
        f = option(f)
    return f


def attribution_command(name, methods):
    @click.command(name=name, help=_method_help(name, methods), context_settings=CONTEXT,
                   short_help=METHOD_INFO[methods[0]].summary if len(methods) == 1 else "side-by-side panel")
    @attribution_options
    def command(**options):
        run_attribution(methods, **options, asked=name)

    return command


def _backbone_for(methods, model_opts):
    """The backbone, in fp32 under --precision auto when a method needs it (explain.precision_for)."""
    from cvtools.visualize.explain import precision_for

    if model_opts.get("precision"):
        model_opts = dict(model_opts, precision=precision_for(methods, model_opts["precision"]))
    return load_backbone_from_options(**model_opts)


def _network_files(model_opts):
    """--model, --classes and --weights files: outputs may never replace them (job.network_files)."""
    from cvtools.visualize.job import network_files

    return network_files(model_opts.get("model"), {"classes": model_opts.get("classes")}, model_opts.get("weights"))


def run_attribution(methods, inputs, target, layer, more_methods, raw, raw_size, colormap, alpha, no_caption, size,
                    batch_size, internal_batch_size, samples, noise, steps, window, seed, sanity, metrics, as_json, output,
                    overwrite, quiet, max_pixels, truth=None, asked="", **model_opts):
    from cvtools.cli.common import check_model_options_early, echo_err, registered_spec
    from cvtools.deferred import Deferred
    from cvtools.device import expects_gpu
    from cvtools.io.discover import find_inputs
    from cvtools.visualize.job import batch_sizes, explain_work, true_classes

    # Everything checkable without torch first: a mistake answers at once, and a re-run whose
    # outputs are all there never loads the network.
    optional = only_from_all(asked, more_methods or "")  # what `all` brought in: left out with a note where unusable
    methods = parse_methods(",".join(methods), more_methods or "")
    check_model_options_early(model_opts)
    spec = registered_spec(model_opts)  # None for --model: known once the file is loaded
    target = class_target(target, model_opts)
    if truth is not None and target is not None:
        raise click.UsageError("--truth explains each photo's predicted and true class; leave out --target")
    if truth not in (None, "folders") and not os.path.isfile(truth):
        raise click.BadParameter(f"'folders' or a labels file; {truth!r} is neither", param_hint="'--truth'")
    if layer is not None and spec is not None:
        spec.check_layers([layer])
    batch_size, internal = batch_sizes(model_opts.get("device"), batch_size, internal_batch_size)

    def build_explainer():
        from cvtools.visualize.explain import Explainer

        return Explainer(_backbone_for(methods, model_opts), methods, target=target, layer=layer,
                         internal_batch_size=internal, samples=samples, noise=noise, seed=seed, steps=steps,
                         window=window, optional=optional, on_note=lambda message: echo_err(f"note: {message}"),
                         on_stage=_stage_printer(quiet or as_json))

    explainer = Deferred(build_explainer)  # built when the first photo reaches the device
    found = find_inputs(inputs, output=output).refuse_videos("visualize")  # once: the work and the batch share it
    outputs = run_outputs()  # what this run names: shared by its work and run_batch
    work = explain_work(explainer, methods, preprocessing=spec.preprocessing if spec is not None else None,
                        output=output, size=size, many=found.many, overwrite=overwrite,
                        inputs=list(found.paths) + _network_files(model_opts),
                        outputs=outputs, max_pixels=max_pixels, raw=raw, raw_size=raw_size, colormap=colormap,
                        alpha=alpha, captions=not no_caption, metrics=metrics, sanity=sanity,
                        truths=true_classes(explainer, truth) if truth is not None else None,
                        batch_size=batch_size, quiet=as_json,
                        on_result=(lambda record: click.echo(json.dumps(record))) if as_json else None)
    work.on_gpu = expects_gpu(model_opts.get("device"))  # more loader threads on a GPU host
    report = run_batch(found, work, f"visualize {','.join(methods)}", quiet=quiet or as_json, outputs=outputs)
    if work.verdicts and not quiet and not as_json:
        wrong = [v for v in work.verdicts if v[1] != v[2]]
        click.echo(f"misclassified {len(wrong)} of {len(work.verdicts)} photos with a known class"
                   + (":" if wrong else ""))
        for path, predicted, true in wrong:
            click.echo(f"  {path}: predicted {predicted}, true {true}")
    summary = work.summary
    if metrics and not quiet and not as_json and sum(len(v) for v in summary.values()) > 0 and len(report.done) > 1:
        from cvtools.visualize.metrics import summarize

        click.echo(f"mean over {len(report.done)} images:")
        for m, scores in summary.items():
            if scores:
                click.echo(f"  {m:<20} {summarize(scores)}")
    finish(report)


def _ig_steps(ctx, param, value):
    """--steps: 'auto' or an integer >= 2."""
    if value is None or str(value).strip().lower() == "auto":
        return "auto"
    try:
        steps = int(value)
    except ValueError:
        raise click.BadParameter(f"auto or a number of steps, not {value!r}") from None
    if not 2 <= steps <= 10000:
        raise click.BadParameter(f"{steps} is not in 2..10000")
    return steps


# ----------------------------------------------------------------------------- scorecard


@visualize.command("score", context_settings=CONTEXT)
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option("--methods", "-m", default="all", show_default=True, metavar="A,B,...",
              help="Methods to score ('all' for every method).")
@click.option("--target", "-t", type=Target(), default="top1", show_default=True, metavar="top1|INDEX|NAME",
              help="Class to explain (default each image's top class).")
@click.option("--layer", "-l", metavar="NAME", help="Layer for the CAM methods (default: the backbone's last).")
@click.option("--sanity", "sanity_images", type=click.IntRange(0, None), default=8, show_default=True, metavar="N",
              help="Run the model-randomisation check on the first N images (it recomputes every map once per "
                   "layer group, ~20 times); 0 to skip.")
@click.option("--no-road", is_flag=True, help="Skip ROAD (deletion and insertion only).")
@click.option("--size", type=click.IntRange(32, 2048), metavar="PX",
              help="Short side of the image the network sees (default: the backbone's crop size, 224).")
@click.option("--batch-size", type=click.IntRange(1, 4096), metavar="N",
              help="Images per batch (default 32 on a GPU, 4 on the CPU).")
@click.option("--internal-batch-size", type=click.IntRange(1, 65536), metavar="N",
              help="Copies per pass inside a method and the metrics (default 256 on a GPU, 32 on the CPU).")
@click.option("--samples", type=click.IntRange(1, 10000), default=32, show_default=True, help="smoothgrad samples.")
@click.option("--steps", type=click.IntRange(2, 10000), default=50, show_default=True,
              help="integrated-gradients steps.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Random map, ROAD noise, sanity re-initialisation.")
@click.option("--markdown", is_flag=True, help="Print the table as Markdown.")
@click.option("--json", "as_json", is_flag=True, help="Means, counts and per-image scores as one JSON object.")
@model_options
@max_pixels_option
@quiet_option
def score(inputs, methods, target, layer, sanity_images, no_road, size, batch_size, internal_batch_size, samples,
          steps, seed, markdown, as_json, quiet, max_pixels, **model_opts):
    """Score attribution methods over a folder: every method x every trust measure.

    \b
    Columns (means over the images; each image's top class unless --target):
      deletion AUC  (lower is better)  class probability as the top-ranked pixels turn mean colour
      insertion AUC (higher)           ... as they come back into a blurred copy (Petsiuk et al. 2018)
      ROAD MoRF     (lower)            ... with the most relevant 10-90% imputed (Rong et al. 2022)
      ROAD LeRF     (higher)           ... with the least relevant 10-90% imputed
      sanity rho    (lower)            rank correlation with the map as layers are randomised,
                                       averaged over the cascade (Adebayo et al. 2018)
      s/image                          seconds per image for the map
    The 'random' row scores a smooth random map: a method should beat it. Nothing is written.

    \b
    Examples:
      cvtools visualize score photos/ -m gradcam,hirescam,scorecam,saliency
      cvtools visualize score photos/ --sanity 0 --json > scores.json
      cvtools visualize score photos/ -m all --device cuda --markdown

    On a CPU this is slow: about 10 s per method per 224 px image for the metrics, plus the
    method itself (scorecam: a forward pass per channel) and ~20 times that for --sanity images.
    """
    from cvtools.cli.common import echo_err
    from cvtools.visualize.job import score_work

    names = parse_methods(methods)
    target = class_target(target, model_opts)
    backbone = _backbone_for(names, model_opts)
    work = score_work(backbone, names, target=target, layer=layer, on_stage=_stage_printer(quiet or as_json),
                      sanity_images=sanity_images, road=not no_road, size=size, batch_size=batch_size,
                      internal_batch_size=internal_batch_size, samples=samples, steps=steps, seed=seed,
                      max_pixels=max_pixels, on_note=lambda message: echo_err(f"note: {message}"),
                      optional=only_from_all(methods))
    from cvtools.io.discover import find_inputs

    found = find_inputs(inputs, extensions=work.extensions).refuse_videos("visualize")
    report = run_batch(found, work, f"visualize score {','.join(names) if len(names) <= 3 else 'methods'}",
                       quiet=quiet or as_json)
    if work.card.images:
        click.echo(json.dumps(work.card.to_json()) if as_json else work.card.table(markdown=markdown))
    finish(report)


def _stage_printer(quiet):
    """``on_stage`` for the slow checks: each stage's start and end on stderr when stderr is not a
    terminal (a log, a pipe), where no progress bar shows that minutes of CPU work are under way;
    None on a terminal (the bar) or with -q / --json."""
    import sys

    from cvtools.cli.common import _is_terminal, echo_err

    if quiet or _is_terminal(sys.stderr):
        return None
    return lambda message: echo_err(f"visualize: {message}")


# ----------------------------------------------------------------------------- feature visualization


class _StepBar:
    """``render_filters``' ``progress(done, total)`` as a tqdm bar in optimisation steps (on a
    terminal only)."""

    def __init__(self, quiet):
        self.quiet, self.bar = quiet, None

    def __call__(self, done, total):
        import sys

        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=total, desc="filters", unit="step", file=sys.stderr, dynamic_ncols=True,
                            disable=self.quiet or not sys.stderr.isatty())
        self.bar.update(done - self.bar.n)

    def close(self):
        if self.bar is not None:
            self.bar.close()


@visualize.command("filters", context_settings=CONTEXT)
@click.option("--layer", "-l", metavar="NAME",
              help="Layer whose channels to visualise (default: the backbone's DeepDream layer, a mid-level one "
                   "with textures and object parts; `cvtools layers` lists them and the defaults).")
@click.option("--channels", "-c", type=Channels(), default="0:16", show_default=True,
              help=f"Channels to visualise. {CHANNELS_HELP}.")
@click.option("--class", "class_targets", metavar="N,NAME,...",
              help="Visualise ImageNet class logits instead of channels (indices or names, comma-separated).")
@click.option("--neuron", is_flag=True, help="Maximise the channel at the centre position only (a single unit's "
                                              "receptive field) instead of everywhere.")
@click.option("--size", type=click.IntRange(32, 1024), metavar="PX",
              help="Image side in pixels (default 128 for channels, 224 for --class).")
@click.option("--steps", type=click.IntRange(1, 100000), metavar="N",
              help="Optimisation steps (default 128 for channels, which settle by ~100; 256 for --class, "
                   "whose objects need longer to form).")
@click.option("--lr", type=click.FloatRange(0, 10, min_open=True), default=0.03, show_default=True,
              help="Adam learning rate.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random start and transforms.")
@click.option("--batch-size", type=click.IntRange(1, 1024), default=16, show_default=True,
              help="Images optimised together (memory knob).")
@click.option("--no-fft", is_flag=True, help="Optimise raw pixels instead of the 1/f Fourier spectrum (noisier).")
@click.option("--no-decorrelate", is_flag=True, help="Optimise RGB directly instead of decorrelated colour (greyer).")
@click.option("--no-transforms", is_flag=True, help="No jitter/scale/rotation robustness (adversarial-looking noise).")
@output_options
@model_options
@quiet_option
def filters(layer, channels, class_targets, neuron, size, steps, lr, seed, batch_size, no_fft, no_decorrelate,
            no_transforms, output, overwrite, quiet, **model_opts):
    """Images that excite each channel of a layer (or a class): a labelled grid.

    Each image starts as faint noise and is optimised with Adam to maximise its channel's mean
    activation (lucid/lucent's method: a 1/f Fourier parameterisation, decorrelated colour, and
    random padding, jitter, scaling and rotation at every step, so the result shows structure the
    channel really responds to rather than pixel noise). Written to
    filters_BACKBONE_LAYER_CHANNELS.png, with --class to classes_BACKBONE_1+281.png (or -o).

    \b
    Examples:
      cvtools visualize filters                              16 channels of the default layer
      cvtools visualize filters --layer blocks.4 -c 0:8      simpler, texture-like features
      cvtools visualize filters --layer head -c 3,99,512     near the classifier
      cvtools visualize filters --class goldfish,281         what a class looks like to the net
      cvtools visualize filters -c 0:4 --steps 64 --size 96  a quick look

    Class logits pool over the whole image, so at channel settings they come out as a texture
    of class cues (orange scales, white petals); --class therefore defaults to 224 px, 256
    steps and stronger zoom/shift/rotation robustness, which grows larger, more object-like
    shapes at about 6 times the cost.

    Time on a 2-core CPU (EfficientNet-Lite0, measured at 128 px, 128 steps): about 30 s per 16
    channels of blocks.10 and 17 s per 8 classes (50 s and 26 s on one core); --class at its
    defaults costs about 6 times that (3 times the pixels, twice the steps); a GPU takes seconds.
    """
    from cvtools.errors import UsageError
    from cvtools.visualize.job import check_output_name, fp32_unless_asked, render_filters

    if class_targets and not any(c.strip() for c in class_targets.split(",")):
        raise UsageError("--class needs at least one class index or name")
    check_output_name(output)  # before the network loads and the minutes of rendering
    model_opts["precision"] = fp32_unless_asked(model_opts.get("precision"))
    backbone = load_backbone_from_options(**model_opts)
    bar = _StepBar(quiet)
    try:
        target = render_filters(backbone, output, layer=layer, channels=channels, classes=class_targets,
                                neuron=neuron, size=size, steps=steps, lr=lr, seed=seed, batch_size=batch_size,
                                fft=not no_fft, decorrelate=not no_decorrelate, transforms=not no_transforms,
                                overwrite=overwrite, progress=bar, protected=_network_files(model_opts))
    finally:
        bar.close()
    if not quiet:
        click.echo(str(target))


@visualize.command("activations", context_settings=CONTEXT)
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option("--layer", "-l", metavar="NAME",
              help="Layer to show (default: the same mid-level layer as `visualize filters`, the backbone's "
                   "DeepDream layer, so a channel seen here can be looked up there).")
@click.option("--channels", "-c", type=Channels(), help=f"Channels to show (default: the --top most active for "
                                                        f"each image). {CHANNELS_HELP}.")
@click.option("--top", type=click.IntRange(1, 4096), default=31, show_default=True,
              help="How many of the most active channels to show when --channels is not given.")
@click.option("--size", type=click.IntRange(32, 2048), metavar="PX",
              help="Short side the network sees (default: the backbone's crop size, 224).")
@click.option("--colormap", type=click.Choice(COLORMAP_CHOICES), default="viridis", show_default=True)
@output_options
@model_options
@max_pixels_option
@quiet_option
def activations(inputs, layer, channels, top, size, colormap, output, overwrite, quiet, max_pixels, **model_opts):
    """A grid of a layer's feature maps for each image: what the layer detects where.

    Writes NAME_act-LAYER.png next to each input (or into -o): the photo, then one tile per
    channel, each scaled to its own range (the label gives its peak) and enlarged without
    smoothing so the layer's true resolution shows.

    \b
    Examples:
      cvtools visualize activations photo.jpg                       31 most active channels
      cvtools visualize filters -c 51,75                            then: what do two of them like?
      cvtools visualize activations photo.jpg -l stem -c 0:32       edge and colour detectors
      cvtools visualize activations photos/ -l blocks.10 -o acts/
    """
    from cvtools.io.discover import find_inputs
    from cvtools.visualize.job import activations_work, check_output_name

    found = find_inputs(inputs, output=output).refuse_videos("visualize")  # once: the work and the batch share it
    check_output_name(output, found.many)  # before the network loads, not once per photo after it
    backbone = load_backbone_from_options(**model_opts)
    outputs = run_outputs()
    work = activations_work(backbone, layer, channels=channels, top=top, size=size, colormap=colormap, output=output,
                            many=found.many, overwrite=overwrite, inputs=list(found.paths) + _network_files(model_opts),
                            outputs=outputs,
                            max_pixels=max_pixels)
    finish(run_batch(found, work, "activations", quiet=quiet, outputs=outputs))
