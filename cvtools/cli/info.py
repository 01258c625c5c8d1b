"""`cvtools backbones` and `cvtools layers`: what networks and layers there are."""

import click


@click.command()
def backbones():
    """List the backbones, whether their weights are here, and their sizes.

    \b
    embedded   weights ship with cvtools (a PyPI package); nothing to download
    available  torchvision weights found in torch's cache
    missing    torchvision downloads them on first use (needs internet), or pass --weights PATH
    """
    from cvtools.backbones import DEFAULT_BACKBONE, backbone_names, weights_status

    click.echo(f"{'name':<30} {'weights':<56} {'params':>7}  input")
    for name in backbone_names():
        status = weights_status(name)
        params, size = _describe(name)
        mark = " (default)" if name == DEFAULT_BACKBONE else ""
        click.echo(f"{name + mark:<30} {status:<56} {params:>7}  {size}")


def _describe(name):
    """Parameter count and eval input size, from the architecture alone (no weights needed)."""
    import torch

    from cvtools.backbones import EMBEDDED

    if name in EMBEDDED:
        from cvtools.backbones.efficientnet_lite import LITE_CONFIGS, efficientnet_lite

        with torch.device("meta"):
            model = efficientnet_lite(name)
        size = LITE_CONFIGS[name].resolution
    else:
        import torchvision

        kwargs = {"aux_logits": False, "init_weights": False} if name == "googlenet" else {}
        with torch.device("meta"):
            model = torchvision.models.get_model(name, weights=None, **kwargs)
        w = torchvision.models.get_model_weights(name).DEFAULT
        size = w.transforms().crop_size[0]
    n = sum(p.numel() for p in model.parameters())
    return f"{n / 1e6:.1f}M", f"{size}px"


@click.command()
@click.argument("backbone", default="efficientnet_lite0", required=False)
def layers(backbone):
    """List a backbone's layers (name, channels, stride) and its default layers per effect.

    Use these names with --layer in dream and visualize. Random weights are used to probe the
    shapes, so this works without downloading anything.
    """
    from cvtools.backbones import load_backbone

    bb = load_backbone(backbone, device="cpu", weights="random", fuse=False)
    d = bb.defaults
    roles = {}
    for n in d.style:
        roles.setdefault(n, []).append("style")
    roles.setdefault(d.content, []).append("content")
    for n in d.dream:
        roles.setdefault(n, []).append("dream")
    roles.setdefault(d.cam, []).append("cam")
    click.echo(f"{bb.name}: {len(bb.layers)} layers (stride = input pixels per feature pixel)")
    click.echo(f"  {'layer':<16} {'channels':>8} {'stride':>6}  default for")
    for info in bb.layers:
        click.echo(f"  {info.name:<16} {info.channels:>8} {info.stride:>6}  {', '.join(roles.get(info.name, []))}")
