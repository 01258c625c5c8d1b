"""`cvtools bench --peers`: the same work done by other libraries, where they are installed, and
by cvtools' default path, on the same inputs in the same run (as cross-framework benchmark suites
do), with the ratio of their times. Peers are never dependencies of cvtools: each is looked for
at run time and listed as "not installed" when absent.

- **pytorch-grad-cam** (``pip install grad-cam``): ``GradCAM`` on the plain EfficientNet-Lite0,
  against cvtools' Grad-CAM on its default backbone (same layer, same images, the predicted class).
- **captum**: ``LayerGradCam`` + bilinear upsampling, the same comparison.
- **TransformerNet** (pytorch/examples' ``fast_neural_style/neural_style/transformer_net.py``,
  importable as ``transformer_net``, e.g. on PYTHONPATH): its network, fp32 eager, against
  cvtools' Stylizer defaults running the same weights (copied into cvtools' network of the same
  shape, width 1.0): the check is the difference of the two outputs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional

from cvtools.bench.timing import Timing, measure

NOT_INSTALLED = "not installed"


@dataclass
class PeerRow:
    peer: str
    version: str  # NOT_INSTALLED when the peer cannot be imported
    work: str = ""
    peer_ms: float = 0.0
    cvtools_ms: float = 0.0
    #: how many times faster cvtools is on this work (peer_ms / cvtools_ms); 0 when not run
    ratio: float = 0.0
    check: str = ""

    @property
    def installed(self) -> bool:
        return self.version != NOT_INSTALLED


@dataclass
class PeerSuite:
    device: str
    torch: str
    size: str
    rows: List[PeerRow] = field(default_factory=list)

    def to_json(self) -> Dict:
        return {"device": self.device, "torch": self.torch, "size": self.size,
                "rows": [asdict(r) for r in self.rows]}


def compare(peer: str, version: str, work: str, theirs: Timing, ours: Timing, check: str = "") -> PeerRow:
    """One row of the table: both medians and their ratio (the peer's time over cvtools')."""
    return PeerRow(peer, version, work, theirs.median_ms, ours.median_ms, theirs.median_ms / ours.median_ms, check)


def _version(distribution: str, module) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return str(getattr(module, "__version__", "unknown version"))


def _shape(dev, size: str):
    """(images, side, timed repeats) per size: the peers' Grad-CAM comparisons."""
    if size == "tiny":
        return 2, 64, 1
    if dev.type == "cuda":
        return 64, 224, 20
    return (4, 224, 3) if size == "quick" else (8, 224, 5)


def _gradcam_inputs(dev, size):
    """The Grad-CAM peers' shared work: images, the plain and the default backbone, layer,
    classes, and cvtools' timing and maps on it (measured once: both peers' rows compare with
    the same figure)."""
    import torch

    from cvtools.backbones import load_backbone

    n, side, repeat = _shape(dev, size)
    x = torch.rand(n, 3, side, side, generator=torch.Generator().manual_seed(5)).to(dev)
    plain = load_backbone("efficientnet_lite0", device=str(dev), fuse=False, precision="fp32", channels_last=False)
    fast = load_backbone("efficientnet_lite0", device=str(dev))
    layer = plain.defaults.cam
    with torch.no_grad():
        target = plain(x).argmax(1)
    from cvtools.visualize.cam import gradcam

    timing = measure(lambda: gradcam(fast, x, target, layer=layer), dev, warmup=1 if repeat == 1 else 3, repeat=repeat)
    ours = gradcam(fast, x, target, layer=layer).detach().float().cpu()
    return x, plain, layer, target, repeat, timing, ours


def _unit(maps):
    """Maps scaled to [0, 1] each (pytorch-grad-cam's and cvtools' Grad-CAM both return them so)."""
    import torch

    m = torch.as_tensor(maps).detach().float().cpu()
    lo, hi = m.amin((-2, -1), keepdim=True), m.amax((-2, -1), keepdim=True)
    return (m - lo) / (hi - lo + 1e-7)


def captum_peer(dev, size, shared) -> PeerRow:
    import captum
    from captum.attr import LayerGradCam

    from cvtools.visualize.cam import upsample_cam
    from cvtools.visualize.model import PixelModel

    x, plain, layer, target, repeat, t_ours, ours = shared
    model = PixelModel(plain)

    def theirs():
        attr = LayerGradCam(model, plain.module(layer)).attribute(x, target=target, relu_attributions=True)
        return upsample_cam(attr.float(), x.shape[-2:])[:, 0]

    t_theirs = measure(theirs, dev, warmup=1 if repeat == 1 else 2, repeat=repeat)
    ref = _unit(theirs())
    diff = float((_unit(ours) - ref).abs().max())
    work = f"Grad-CAM, lite0 {layer}, {x.shape[0]} x {x.shape[-1]}px"
    return compare("captum", _version("captum", captum), work, t_theirs, t_ours,
                   f"max|Δ| {diff:.1e} (maps in [0,1]; cvtools fused{', fp16' if dev.type == 'cuda' else ''})")


def grad_cam_peer(dev, size, shared) -> PeerRow:
    import pytorch_grad_cam
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from cvtools.visualize.model import PixelModel

    x, plain, layer, target, repeat, t_ours, ours = shared
    cam = GradCAM(model=PixelModel(plain), target_layers=[plain.module(layer)])
    xg = x.clone().requires_grad_(True)  # our backbone's weights are frozen: it needs a grad path
    targets = [ClassifierOutputTarget(int(t)) for t in target]
    try:
        t_theirs = measure(lambda: cam(input_tensor=xg, targets=targets), dev, warmup=1 if repeat == 1 else 2,
                           repeat=repeat)
        ref = _unit(cam(input_tensor=xg, targets=targets))
    finally:
        cam.activations_and_grads.release()  # its hooks would otherwise run inside cvtools' calls
    diff = float((_unit(ours) - ref).abs().max())
    work = f"Grad-CAM, lite0 {layer}, {x.shape[0]} x {x.shape[-1]}px"
    return compare("pytorch-grad-cam", _version("grad-cam", pytorch_grad_cam), work, t_theirs, t_ours,
                   f"max|Δ| {diff:.1e} (maps in [0,1])")


def transformer_net_peer(dev, size, shared=None) -> PeerRow:
    import os
    import tempfile

    import torch
    import transformer_net

    from cvtools.style.network import TransformerNet
    from cvtools.style.records import save_style_weights
    from cvtools.style.stylize import Stylizer

    side = 64 if size == "tiny" else 1080 if dev.type == "cuda" else 512
    h, w = (side, side) if dev.type != "cuda" or size == "tiny" else (1080, 1920)
    repeat = 1 if size == "tiny" else 20 if dev.type == "cuda" else 3
    torch.manual_seed(0)
    theirs_net = transformer_net.TransformerNet().eval()
    ours_net = TransformerNet(1.0, 5)
    pairs = list(zip(theirs_net.state_dict().items(), ours_net.state_dict().items()))
    if len(pairs) != len(ours_net.state_dict()) or any(a.shape != b.shape for (_, a), (_, b) in pairs):
        raise ValueError("transformer_net.TransformerNet is not Johnson et al.'s network of width 1.0")
    with torch.no_grad():
        for (_, a), (_, b) in pairs:  # fp16 values: what cvtools stores, so both run the same weights
            a.copy_(a.half().float())
            b.copy_(a)
    theirs_net = theirs_net.to(dev)
    x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(7)).to(dev)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "peer.safetensors")
        save_style_weights(ours_net, path, name="peer")
        stylizer = Stylizer(path, device=str(dev), compile=False)  # eager, as the peer
        with torch.inference_mode():
            t_theirs = measure(lambda: theirs_net(x), dev, warmup=1 if repeat == 1 else 3, repeat=repeat)
            # cvtools' network ends in a sigmoid (outputs in [0, 1]); pytorch/examples' in none
            ref = torch.sigmoid(theirs_net(x).float()).cpu()
        t_ours = measure(lambda: stylizer.stylize_tensor(x), dev, warmup=1 if repeat == 1 else 3, repeat=repeat)
        ours = stylizer.stylize_tensor(x).float().cpu()
    diff = float((ours - ref).abs().max())
    work = f"stylize, width-1.0 network, 1 x {w}x{h}"
    return compare("TransformerNet (pytorch/examples)", "examples", work, t_theirs, t_ours,
                   f"max|Δ| {diff:.1e} after sigmoid (cvtools {str(stylizer.dtype).replace('torch.', '')})")


#: (name, the module whose import failing means "not installed", what runs it)
PEERS: List = [
    ("pytorch-grad-cam", "pytorch_grad_cam", grad_cam_peer),
    ("captum", "captum", captum_peer),
    ("TransformerNet (pytorch/examples)", "transformer_net", transformer_net_peer),
]


def installed(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def run_peers(device: str = "auto", size: str = "full", progress: Optional[Callable[[str], None]] = None) -> PeerSuite:
    """Each installed peer against cvtools on the same inputs, in this run; absent peers are rows
    saying so. ``size``: as :func:`cvtools.bench.run_suite`'s."""
    import torch

    from cvtools.backbones import resolve_device
    from cvtools.bench import SIZES, device_name

    if size not in SIZES:
        from cvtools.errors import UsageError

        raise UsageError(f"size {size!r} is not one of {', '.join(SIZES)}", param="size")
    dev = resolve_device(device)
    suite = PeerSuite(device_name(dev), torch.__version__, size)
    shared = None
    for name, module, run in PEERS:
        if not installed(module):
            suite.rows.append(PeerRow(name, NOT_INSTALLED))
            continue
        if progress:
            progress(name)
        if run is not transformer_net_peer and shared is None:
            shared = _gradcam_inputs(dev, size)  # the Grad-CAM peers share inputs and models
        suite.rows.append(run(dev, size, shared))
    return suite


def format_peers(suite: PeerSuite) -> str:
    lines = [f"peers, same inputs, same run: {suite.device}   torch {suite.torch}   size {suite.size}", ""]
    header = (f"{'peer':<34} {'version':<9} {'work':<44} {'peer':>10} {'cvtools':>10} {'ratio':>8}  check")
    lines += [header, "-" * len(header)]
    for r in suite.rows:
        if not r.installed:
            lines.append(f"{r.peer:<34} {NOT_INSTALLED}")
            continue
        lines.append(f"{r.peer:<34} {r.version:<9} {r.work:<44} {r.peer_ms:>8.2f}ms {r.cvtools_ms:>8.2f}ms "
                     f"{r.ratio:>7.2f}x  {r.check}")
    lines += ["", "ratio: the peer's median time over cvtools' default path on the same work (above 1: cvtools "
              "is faster)"]
    return "\n".join(lines)
