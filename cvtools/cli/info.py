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
def layers(backbone):
    """List a backbone's layers (name, channels, stride) and its default layers per effect.

    Use these names with --layer in dream and visualize. Random weights are used to probe the
    shapes, so this works without downloading anything.
    """
    from cvtools.backbones import load_backbone

    bb = load_backbone(backbone, device="cpu", weights="random", fuse=False)
    roles = bb.defaults.roles()
    click.echo(f"{bb.name}: {len(bb.layers)} layers (stride = input pixels per feature pixel)")
    click.echo(f"  {'layer':<16} {'channels':>8} {'stride':>6}  default for")
    for info in bb.layers:
        click.echo(f"  {info.name:<16} {info.channels:>8} {info.stride:>6}  {', '.join(roles.get(info.name, []))}")
