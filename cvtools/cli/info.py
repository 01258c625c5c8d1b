"""`cvtools backbones` and `cvtools layers`: what networks and layers there are (from the
backbone registry, :mod:`cvtools.backbones.registry`)."""

import click


@click.command()
@click.argument("backbone", required=False)
def backbones(backbone):
    """List the backbones, whether their weights are here, and their sizes; with a BACKBONE
    name, its weights (source, license, published top-1), preprocessing and default layers.

    \b
    embedded   weights ship with cvtools (a PyPI package); nothing to download
    available  torchvision weights found in torch's cache
    missing    torchvision downloads them on first use (needs internet), or pass --weights PATH
    """
    from cvtools.backbones import DEFAULT_BACKBONE
    from cvtools.backbones.registry import get_spec, specs

    if backbone is not None:
        _describe(get_spec(backbone))
        return
    click.echo(f"{'name':<30} {'weights':<56} {'params':>7}  input")
    for spec in specs():
        mark = " (default)" if spec.name == DEFAULT_BACKBONE else ""
        click.echo(f"{spec.name + mark:<30} {spec.weights_status():<56} {spec.params / 1e6:>6.1f}M  "
                   f"{spec.input_size}px")


def _describe(spec):
    w, pre = spec.weights, spec.preprocessing
    click.echo(f"{spec.name} ({spec.family}): {spec.params / 1e6:.1f}M parameters, {len(spec.layers)} layers")
    click.echo(f"  weights        {w.name}: {spec.weights_status()}")
    click.echo(f"  source         {w.source}")
    click.echo(f"  license        {w.license}")
    click.echo(f"  top-1          {w.top1:.1f}% on ImageNet-1k validation (published by the source)")
    click.echo(f"  preprocessing  {pre.describe()}; eval: resize {pre.resize_size} ({pre.interpolation}), "
               f"crop {pre.crop_size}")
    d = spec.defaults
    click.echo(f"  style          {', '.join(d.style)} (content {d.content})")
    click.echo(f"  dream          {', '.join(d.dream)}")
    click.echo(f"  cam            {d.cam}")


@click.command()
@click.argument("backbone", default="efficientnet_lite0", required=False)
@click.option("--model", "-M", metavar="FILE",
              help="Your own network (a state dict with --architecture, TorchScript or .pt2) instead of BACKBONE.")
@click.option("--architecture", "--arch", "architecture", metavar="NAME",
              help="For a --model state dict: a torchvision classifier or timm:NAME.")
@click.option("--input-size", type=click.IntRange(8, 4096), metavar="PX", help="--model's input size.")
@click.option("--trust-pickle", is_flag=True, help="Load a --model saved as a pickled whole module (runs its code).")
def layers(backbone, model, architecture, input_size, trust_pickle):
    """List a network's layers (name, channels, stride, shape) and its default layer per effect.

    Use these names with --layer in dream and visualize. A registered BACKBONE is probed with
    random weights (nothing is downloaded); --model FILE lists your own network's layers as
    loaded, with how token sequences (ViT) or channels-last maps (Swin) become feature maps and
    what was done for speed (BatchNorm folding).

    \b
    Examples:
      cvtools layers                                   the embedded EfficientNet-Lite0
      cvtools layers resnet50
      cvtools layers --model finetuned.pth --architecture resnet18
      cvtools layers --model vit.pt2
    """
    if model is not None:
        from cvtools.backbones import load_user_model
        from cvtools.cli.notes import note_printer

        # its notes (keys of the file left out) as one-line notes, not Python warnings
        bb = load_user_model(model, architecture, input_size=input_size, trust_pickle=trust_pickle, device="cpu",
                             precision="fp32", on_note=note_printer())
    else:
        if architecture or input_size or trust_pickle:
            from cvtools.errors import UsageError

            raise UsageError("--architecture, --input-size and --trust-pickle go with --model FILE")
        from cvtools.backbones import load_backbone

        bb = load_backbone(backbone, device="cpu", weights="random", fuse=False)
    roles = bb.defaults.roles()
    size = bb.preprocessing.crop_size
    click.echo(f"{bb.name}: {len(bb.layers)} layers at a {size}x{size} input (stride = input pixels per feature "
               f"pixel); {len(bb.categories)} classes")
    if model is not None:
        click.echo(f"  weights: {bb.weights_desc}; speed: {bb.fast_path or 'as loaded'}")
        if bb.layers_note and not bb.layers:
            click.echo(f"  {bb.layers_note}")
    show_shape = any(info.shape for info in bb.layers)
    width = max([len("layer")] + [len(info.name) for info in bb.layers])
    views = list(dict.fromkeys(info.view for info in bb.layers if info.view))
    shape_head = f" {'map C x h x w':<16}" if show_shape else ""
    click.echo(f"  {'layer':<{width}} {'channels':>8} {'stride':>6}{shape_head}  default for")
    for info in bb.layers:
        shape = ""
        if show_shape:
            mark = "*" * (views.index(info.view) + 1) if info.view else ""
            shape = f" {'x'.join(map(str, info.shape)) + mark:<16}"
        click.echo(f"  {info.name:<{width}} {info.channels:>8} {_stride(info):>6}{shape}  "
                   f"{', '.join(roles.get(info.name, []))}".rstrip())
    for k, view in enumerate(views):  # how outputs that are not N×C×h×w maps were read as maps
        click.echo(f"  {'*' * (k + 1)} {view}")
    if any(not info.stride for info in bb.layers):
        click.echo("  stride -: no spatial grid (a vector, as after global pooling: the classifier)")


def _stride(info) -> str:
    """A layer's stride as listed: "-" for an output that is not a feature map (LayerInfo.stride
    is 0 there: the fc after global pooling has no pixels to count, and "0" read as a number)."""
    return str(info.stride) if info.stride else "-"
