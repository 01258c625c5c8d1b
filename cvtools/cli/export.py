"""``cvtools export``: a style (or a backbone) as an ONNX file, checked against PyTorch."""

import click

from cvtools.cli.common import echo_err, quiet_option


@click.command()
@click.option("--style", "-s", metavar="NAME|PATH",
              help="The style to export: a bundled name (see `cvtools styles`), or NAME.json / NAME.safetensors "
                   "from `cvtools train-style`.")
@click.option("--backbone", "-b", metavar="NAME",
              help="Export a backbone's classifier instead ([0, 1] RGB in, ImageNet logits out; BatchNorm folded): "
                   "efficientnet_lite0, resnet50, ... (see `cvtools backbones`).")
@click.option("--arbitrary", is_flag=True,
              help="Export the any-painting network instead, as two files: -o any.onnx writes any_encoder.onnx "
                   "(painting -> style embedding: 406 numbers for the bundled network) and any_transformer.onnx (photo + embedding -> "
                   "stylized). fp32.")
@click.option("--weights", metavar="PATH|random",
              help="With --backbone: a local state dict, or 'random'. With --arbitrary: a network from "
                   "train_arbitrary (.safetensors; default the bundled one).")
@click.option("-o", "--output", metavar="FILE.onnx|DIR/",
              help="Where to write the file (default: NAME.onnx, NAME_fp16.onnx, in the current directory); "
                   "an existing folder, or a path ending in /, gets DIR/NAME.onnx.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@click.option("--precision", type=click.Choice(["fp32", "fp16"]), default="fp32", show_default=True,
              help="fp16 halves the file (for GPUs, phones, browsers); inputs and outputs stay float32.")
@click.option("--opset", type=click.IntRange(18, None), metavar="N",
              help="ONNX opset to target (default: the exporter's recommended one, recorded in the file).")
@click.option("--check-image", "check_images", multiple=True, type=click.Path(dir_okay=False), metavar="PHOTO",
              help="Check on these photos (repeatable; default: 3 sample photos of different sizes).")
@click.option("--no-check", is_flag=True, help="Skip the onnxruntime-against-PyTorch check (no onnxruntime needed).")
@quiet_option
def export(style, backbone, arbitrary, weights, output, overwrite, precision, opset, check_images, no_check, quiet):
    """Export a style to ONNX, to run it anywhere: onnxruntime, phones, browsers, other programs.

    The file is the network cvtools runs itself (sub-pixel decoder, space-to-depth 9x9
    convolutions) for any batch, height and width (at least 16 px): input 'image' float32
    N×3×H×W RGB in [0, 1], output 'stylized' in [0, 1]. Its metadata holds the style's record
    (painting, where the style image came from, weights SHA-256), the precision and the opset.

    Before the file is written, onnxruntime runs it on 3 photos of different sizes and must
    match PyTorch within 1e-4 (fp32; fp16: within twice PyTorch's own fp16 error). Prints the
    differences and the file's SHA-256.

    --arbitrary writes the any-painting network as two files: NAME_encoder.onnx ('painting'
    N×3×H×W in [0, 1], resized beforehand as the 'config' in its metadata says: the bundled
    network's long side to 512 px, antialiased → 'embedding' N×406: 400 encoded, 0 in the six
    places of the bundled names' style tokens) and NAME_transformer.onnx ('image' + 'embedding'
    → 'stylized'). Blend paintings and set the strength by mixing embeddings (weighted means) between the two. Checked the same way
    (embeddings within 1e-4 of their scale).

    \b
    Examples:
      cvtools export --style starry_night -o starry_night.onnx
      cvtools export -s my_style.json --precision fp16 -o my_style_fp16.onnx
      cvtools export --backbone efficientnet_lite0 -o lite0.onnx
      cvtools export --arbitrary -o any.onnx     any_encoder.onnx + any_transformer.onnx
    Needs: pip install 'cvtools[onnx]'. README "Run a style anywhere: ONNX" runs the file.
    """
    from cvtools.errors import UsageError
    from cvtools.export import export_backbone, export_style

    if bool(style) + bool(backbone) + bool(arbitrary) != 1:
        raise UsageError("give --style NAME or --backbone NAME, or --arbitrary (one of them)")
    if weights and not (backbone or arbitrary):
        raise UsageError("--weights goes with --backbone or --arbitrary")
    on_note = (lambda msg: None) if quiet else (lambda msg: echo_err(f"{msg}..."))
    images = list(check_images) or None
    if arbitrary:
        _export_arbitrary(output, weights, overwrite, precision, opset, images, no_check, quiet, on_note)
        return
    if style:
        from cvtools.style.records import resolve_style, shadowed_file_note

        _not_a_painting(style)
        note = shadowed_file_note(style)
        if note and not quiet:
            echo_err(f"note: {note}")
        record = resolve_style(style)
        target = _in_folder(output, f"{record.name}{'_fp16' if precision == 'fp16' else ''}.onnx")
        report = export_style(record, target, precision=precision, opset=opset, overwrite=overwrite,
                              check=not no_check, check_images=images, on_note=on_note)
    else:
        target = _in_folder(output, f"{backbone}{'_fp16' if precision == 'fp16' else ''}.onnx")
        report = export_backbone(backbone, target, precision=precision, opset=opset, overwrite=overwrite,
                                 weights=weights, check=not no_check, check_images=images, on_note=on_note)
    if not quiet:
        for c in report.checks:
            extra = f"; {c.note}" if c.note else ""
            click.echo(f"check {c.image} ({c.size[0]}x{c.size[1]}): max |onnxruntime - PyTorch| = "
                       f"{c.max_abs_diff:.2e} <= {c.bound:.1e}{extra}")
        if no_check:
            click.echo("check skipped (--no-check)")
    kb = report.bytes / 1024
    click.echo(f"{report.path}: {report.kind} {report.name}, {report.precision}, opset {report.opset}, "
               f"{kb:,.0f} KB, {report.seconds:.1f} s")
    click.echo(f"sha256 {report.sha256}")


def _not_a_painting(style) -> None:
    """A UsageError for a painting given as --style: it has no network of its own to export (it
    was refused as "style weights must be a .safetensors file"); the any-painting network paints it."""
    from cvtools.errors import UsageError, safe_path
    from cvtools.style.records import is_painting

    if is_painting(style):
        raise UsageError(f"--style {safe_path(style)}: a painting is not a style of its own to export; export the "
                         "any-painting network with `cvtools export --arbitrary -o any.onnx` (it paints any painting; "
                         f"`cvtools stylize PHOTO -s {safe_path(style)} --engine onnxruntime` runs it)")


def _in_folder(output, name: str) -> str:
    """Where the file goes: ``output`` as given, NAME when none, FOLDER/NAME for ``-o FOLDER``
    (an existing folder, or a path ending in / that is made)."""
    import os

    if not output:
        return name
    if output.endswith(("/", os.sep)) or os.path.isdir(output):
        return os.path.join(output, name)
    return output


def _export_arbitrary(output, weights, overwrite, precision, opset, images, no_check, quiet, on_note):
    from cvtools.errors import UsageError
    from cvtools.export import export_arbitrary

    if precision != "fp32":
        raise UsageError("--arbitrary exports fp32 only (the encoder's statistics are sums that fp16 rounds)")
    if weights == "random":
        raise UsageError("--weights random is for --backbone; --arbitrary takes a .safetensors file")
    reports = export_arbitrary(_in_folder(output, "any_painting.onnx"), weights, opset=opset, overwrite=overwrite,
                               check=not no_check, check_images=images, on_note=on_note)
    for report in reports:
        if not quiet:
            for c in report.checks:
                what = "embedding" if report.kind.endswith("encoder") else "stylized"
                click.echo(f"check {report.kind} {c.image} ({c.size[0]}x{c.size[1]}): max |onnxruntime - PyTorch| "
                           f"{what} = {c.max_abs_diff:.2e} <= {c.bound:.1e}; {c.note}")
        click.echo(f"{report.path}: {report.kind}, fp32, opset {report.opset}, {report.bytes / 1024:,.0f} KB, "
                   f"sha256 {report.sha256}")
    if no_check and not quiet:
        click.echo("check skipped (--no-check)")
