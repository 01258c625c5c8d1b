import json

import click

from cvtools.cli.common import (
    finish,
    load_backbone_from_options,
    max_pixels_option,
    model_options,
    quiet_option,
    run_batch,
)


@click.command()
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option("--top", "-k", "top_k", type=click.IntRange(1, 1000), default=5, show_default=True,
              help="How many classes to show.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file (path, top-k index/name/probability).")
@click.option("--center-crop", is_flag=True,
              help="Classify the ImageNet evaluation crop (short side 256, centre 224x224), as published "
                   "accuracies are measured, instead of the whole photo (what `cvtools visualize` explains).")
@model_options
@max_pixels_option
@quiet_option
def classify(inputs, top_k, as_json, center_crop, quiet, **model_opts):
    """ImageNet top-K classes for images, directories or globs.

    The network sees the whole photo (short side 224 px on the default backbone), exactly as
    `cvtools visualize` does, so both name the same class with the same probability.
    --center-crop uses the ImageNet evaluation crop instead, which cuts off the sides of wide
    photos and can change the answer.

    \b
    Examples:
      cvtools classify samples/chelsea.jpg
      cvtools classify photos/ --top 1 --json > labels.jsonl
      cvtools classify samples/chelsea.jpg --center-crop
    """
    from cvtools.classify import classify_images
    from cvtools.imageio import load_image

    backbone = load_backbone_from_options(**model_opts)

    def work(path):
        image = load_image(path)
        preds = classify_images(backbone, [image.rgb], top_k, crop=center_crop)[0]
        if as_json:
            click.echo(json.dumps({"path": str(path), "top": [
                {"index": p.index, "name": p.name, "probability": round(p.probability, 6)} for p in preds]}))
        else:
            lines = [f"{path}:"] + [f"  {p.probability:6.1%}  {p.name} ({p.index})" for p in preds]
            click.echo("\n".join(lines))

    finish(run_batch(inputs, work, "classify", quiet=quiet or as_json))
