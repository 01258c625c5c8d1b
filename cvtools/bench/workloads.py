"""The benchmark workloads. Each returns rows: the plain baseline first (ratio 1.0), then the
fast variants with their speed-up and their agreement with the baseline. Workloads that time
several things (cams: five methods; user-gradcam: two networks) give each its own group of rows
(``Row.group``), each starting with its own baseline.

``size``: "full" (the figures BENCHMARKS.md quotes), "quick" (smaller batches, fewer repeats) or
"tiny" (a few pixels and one repeat: every variant runs in seconds on a 2-core CPU; what the
tests use; its numbers mean nothing)."""

from __future__ import annotations

from typing import Dict, List

from cvtools.bench import Row
from cvtools.bench.timing import measure


def _batch(n, size, seed=0):
    import torch

    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g)


def backbone_classify(dev, size) -> List[Row]:
    """EfficientNet-Lite0 logits, batch 64 at 224 px (16 on the CPU)."""
    import torch

    from cvtools.backbones import load_backbone

    quick, tiny = size != "full", size == "tiny"
    n = 2 if tiny else 64 if dev.type == "cuda" else (4 if quick else 16)
    x = _batch(n, 64 if tiny else 224).to(dev)
    variants = [("unfused fp32 eager (baseline)", dict(fuse=False, precision="fp32", channels_last=False))]
    if dev.type == "cuda":
        variants += [
            ("fused fp32", dict(precision="fp32", channels_last=False)),
            ("fused fp16 channels_last", dict(precision="fp16", channels_last=True)),
            ("fused fp16 channels_last compile", dict(precision="fp16", channels_last=True, compile=True)),
        ]
    else:
        variants += [
            ("fused fp32", dict(precision="fp32", channels_last=False)),
            ("fused fp32 channels_last (default)", dict(precision="fp32", channels_last=True)),
            ("fused bf16 channels_last", dict(precision="bf16", channels_last=True)),
        ]
        if not quick:
            variants.append(("fused fp32 channels_last compile", dict(precision="fp32", channels_last=True, compile=True)))
    rows, ref = [], None
    repeat = 1 if tiny else 5 if dev.type == "cpu" else 30
    for desc, kw in variants:
        bb = load_backbone("efficientnet_lite0", device=str(dev), **kw)
        with torch.inference_mode():
            t = measure(lambda: bb(x), dev, warmup=1 if tiny else 3, repeat=repeat)
            out = bb(x).float().cpu()
        if ref is None:
            ref, base_ms, check = out, t.median_ms, "reference"
        else:
            rel = ((out - ref).abs().max() / ref.abs().max()).item()
            same = (out.argmax(1) == ref.argmax(1)).float().mean().item()
            check = f"max|Δ|/max={rel:.1e}, top-1 agree {same:.0%}"
        rows.append(Row("backbone", desc, t.median_ms, f"{n} images", n / t.median_ms * 1e3, "img/s",
                        base_ms / t.median_ms, t.first_ms, check))
    return rows


def _plain_backbone(dev):
    from cvtools.backbones import load_backbone

    # tuned: cuDNN autotuning and cuDNN depthwise kernels, what plain PyTorch code with
    # cudnn.benchmark gets (the steady-state baseline every earlier measurement used)
    return load_backbone("efficientnet_lite0", device=str(dev), fuse=False, precision="fp32", channels_last=False,
                         tune=True)


def _psnr(a, b) -> float:
    import math

    mse = float(((a.float().cpu() - b.float().cpu()) ** 2).mean())
    return float("inf") if mse == 0 else 10 * math.log10(1.0 / mse)


def dream_workload(dev, size) -> List[Row]:
    """DeepDream with the default layers, 4 octaves x 10 steps, jitter 32: 1920x1080 on GPUs,
    512x512 on the CPU (2 octaves x 5 steps with --quick; tiny: 64x64, 1 octave x 2 steps)."""
    import torch

    from cvtools.backbones import load_backbone
    from cvtools.dream import DreamEngine, DreamSettings

    quick, tiny = size != "full", size == "tiny"
    h, w = (64, 64) if tiny else (1080, 1920) if dev.type == "cuda" else (512, 512)
    octaves, steps = (1, 2) if tiny else (2, 5) if quick and dev.type != "cuda" else (4, 10)
    g = torch.Generator().manual_seed(3)
    image = torch.nn.functional.interpolate(torch.rand(1, 3, h // 16, w // 16, generator=g), size=(h, w),
                                            mode="bilinear", align_corners=False)[0].to(dev)
    settings = dict(octaves=octaves, steps=steps, jitter=32, tile=None)
    # (description, backbone, fast path, compiled, cuDNN autotuning on)
    variants = [
        ("unfused fp32 eager (baseline)", _plain_backbone(dev), False, False, True),
    ]
    fast_bb = load_backbone("efficientnet_lite0", device=str(dev), tune=True)
    if dev.type == "cuda":
        variants.append(("fused fp16 channels_last eager (--tune)", fast_bb, False, False, True))
        variants.append(("fused fp16 channels_last + CUDA graphs (--tune)", fast_bb, None, False, True))
        if not quick:
            variants.append(("+ compile (--compile)", fast_bb, None, True, True))
        # the default, untuned: a new photo size starts in ~2 s instead of 14-60 s (cold rows)
        variants.append(("default (untuned) + CUDA graphs", load_backbone("efficientnet_lite0", device=str(dev)),
                         None, False, False))
    else:
        variants.append(("fused fp32 channels_last (default)", fast_bb, None, False, False))
        variants.append(("fused bf16 channels_last", load_backbone("efficientnet_lite0", device="cpu", precision="bf16"),
                         None, False, False))
    rows, ref = [], None
    for desc, bb, fast, compiled, tuned in variants:
        if dev.type == "cuda":
            torch.backends.cudnn.benchmark = tuned  # a process-wide switch: set for each row
        engine = DreamEngine(bb, DreamSettings(fast=fast, compile=compiled, **settings))
        t = measure(lambda: engine(image, seed=0), dev, warmup=1 if tiny else 2,
                    repeat=1 if tiny else 10 if dev.type == "cuda" else 2)
        # A dream is chaotic (a 1e-4 change moves later steps visibly), so the paths are
        # compared after one step of one octave, where they must agree closely.
        one = DreamEngine(bb, DreamSettings(fast=fast, compile=compiled, octaves=1, steps=1, jitter=32,
                                            tile=None))(image, seed=0)
        if ref is None:
            ref, base, check = one, t.median_ms, "reference"
        else:
            check = f"1-step PSNR vs baseline {_psnr(one, ref):.1f} dB"
        rows.append(Row("dream", desc, t.median_ms, f"1 image {w}x{h}", 1e3 / t.median_ms, "img/s",
                        base / t.median_ms, t.first_ms, check, f"{octaves} octaves x {steps} steps"))
    return rows


def gradcam_workload(dev, size) -> List[Row]:
    """Grad-CAM at the last block, batch 64 at 224 px (8 on the CPU): captum LayerGradCam +
    bilinear upsampling on the plain model, pytorch-grad-cam when installed (benchmark only),
    and cvtools' batched single-hook Grad-CAM."""
    import torch

    from cvtools.backbones import load_backbone
    from cvtools.visualize.cam import gradcam, upsample_cam
    from cvtools.visualize.model import PixelModel

    quick, tiny = size != "full", size == "tiny"
    n = 2 if tiny else 64 if dev.type == "cuda" else (4 if quick else 8)
    x = _batch(n, 64 if tiny else 224, seed=5).to(dev)
    plain = _plain_backbone(dev)
    repeat = 1 if tiny else 20 if dev.type == "cuda" else 3
    layer = plain.defaults.cam

    def captum_cam():
        from captum.attr import LayerGradCam

        model = PixelModel(plain)
        with torch.no_grad():
            target = model(x).argmax(1)
        attr = LayerGradCam(model, plain.module(layer)).attribute(x, target=target, relu_attributions=True)
        return upsample_cam(attr.float(), x.shape[-2:])[:, 0]

    rows = []
    t = measure(captum_cam, dev, warmup=1 if tiny else 2, repeat=repeat)
    ref = captum_cam()
    base = t.median_ms
    rows.append(Row("gradcam", "captum LayerGradCam fp32 (baseline)", t.median_ms, f"{n} images", n / t.median_ms * 1e3,
                    "img/s", 1.0, t.first_ms, "reference"))
    try:
        from pytorch_grad_cam import GradCAM as PGC

        model = PixelModel(plain)
        cam = PGC(model=model, target_layers=[plain.module(layer)])
        xg = x.clone().requires_grad_(True)  # our backbone's weights are frozen; it needs a grad path
        t = measure(lambda: cam(input_tensor=xg, targets=None), dev, warmup=1 if tiny else 2, repeat=repeat)
        theirs = torch.as_tensor(cam(input_tensor=xg, targets=None)).float()
        cam.activations_and_grads.release()  # its hooks would otherwise run inside the rows below
        check = f"max|Δ| vs captum, maps scaled to [0,1]: {float((_unit(theirs) - _unit(ref)).abs().max()):.2f}"
        rows.append(Row("gradcam", "pytorch-grad-cam fp32", t.median_ms, f"{n} images", n / t.median_ms * 1e3,
                        "img/s", base / t.median_ms, t.first_ms, check))
    except ImportError:
        pass
    variants = [("cvtools fp32 (same model)", plain),
                ("cvtools default (fused, fp16/CL on GPU)", load_backbone("efficientnet_lite0", device=str(dev)))]
    if dev.type == "cuda":
        # --tune: cuDNN autotuning for this size (what every call had in November, when loading
        # a network set the flag process-wide and each new size's first call paid seconds for it)
        variants.append(("cvtools --tune (default + cuDNN autotuning)",
                         load_backbone("efficientnet_lite0", device=str(dev), tune=True)))
    for desc, bb in variants:
        t = measure(lambda: gradcam(bb, x, layer=layer), dev, warmup=1 if tiny else 3,
                    repeat=1 if tiny else 30 if dev.type == "cuda" else 3)
        out = gradcam(bb, x, layer=layer)
        check = f"max|Δ| vs captum {float((out.detach().float().cpu() - ref.detach().float().cpu()).abs().max()):.1e}"
        rows.append(Row("gradcam", desc, t.median_ms, f"{n} images", n / t.median_ms * 1e3, "img/s",
                        base / t.median_ms, t.first_ms, check))
    return rows


def cams_workload(dev, size) -> List[Row]:
    """HiResCAM, XGrad-CAM, Eigen-CAM, Score-CAM and Ablation-CAM at the last block of
    EfficientNet-Lite0, 224 px: pytorch-grad-cam fp32 as the baseline when installed (benchmark
    only; the same unfused model on normalised input, so Score-CAM masks the same tensor), then
    cvtools on the same model and its default (fused, fp16/channels-last on a GPU). 8 images on a
    GPU; on the CPU 2 (Score-CAM: 1 at 112 px, a forward pass per channel); tiny: 1 at 64 px. Each
    method is a group of rows; without pytorch-grad-cam, cvtools fp32 is the group's baseline."""
    import torch

    from cvtools.backbones import load_backbone
    from cvtools.visualize.attribution import make_method

    plain = _plain_backbone(dev)
    fast = load_backbone("efficientnet_lite0", device=str(dev))
    layer = plain.defaults.cam
    gpu, tiny = dev.type == "cuda", size == "tiny"
    repeat = 5 if gpu and not tiny else 1
    try:
        import pytorch_grad_cam as pgc
    except ImportError:
        pgc = None
    names = {"hirescam": "HiResCAM", "xgradcam": "XGradCAM", "eigencam": "EigenCAM", "scorecam": "ScoreCAM",
             "ablationcam": "AblationCAM"}
    rows = []
    for name, cls in names.items():
        slow = name in ("scorecam", "ablationcam")
        n = 1 if tiny else 8 if gpu else (1 if name == "scorecam" else 2)
        side = 64 if tiny else 112 if (name == "scorecam" and not gpu) else 224
        x = _batch(n, side, seed=6).to(dev)
        with torch.no_grad():
            target = plain(x).argmax(1)
        chunk = 256 if gpu else 64
        ref, base = None, None
        if pgc is not None:
            cam = getattr(pgc, cls)(model=plain.model, target_layers=[plain.module(layer)])
            if slow:
                cam.batch_size = chunk
            xin = plain.prepare(x).requires_grad_(not slow and name != "eigencam")
            t, ref = _pgc_timed(cam, xin, target, dev, repeat)
            base = t.median_ms
            rows.append(Row("cams", f"{name} pytorch-grad-cam fp32 (baseline)", t.median_ms, f"{n} images {side}px",
                            n / t.median_ms * 1e3, "img/s", 1.0, t.first_ms, "reference", group=name))
        ours = "cvtools fp32" if pgc is not None else "cvtools fp32 (baseline)"
        for desc, bb in [(ours, plain), ("cvtools default", fast)]:
            method = make_method(name, bb, layer=layer, internal_batch_size=chunk)
            t = measure(lambda: method(x, target), dev, warmup=1 if slow else 3, repeat=repeat if slow else 3 * repeat)
            out = _unit(method(x, target))
            check = ("pytorch-grad-cam not installed" if ref is None
                     else f"max|Δ| vs pytorch-grad-cam {float((out - ref).abs().max()):.1e}")
            base = base or t.median_ms
            rows.append(Row("cams", f"{name} {desc}", t.median_ms, f"{n} images {side}px", n / t.median_ms * 1e3,
                            "img/s", base / t.median_ms, t.first_ms, check, group=name))
    return rows


def _unit(maps):
    """Maps scaled to [0, 1] each, as pytorch-grad-cam and cvtools return them."""
    import torch

    m = torch.as_tensor(maps).detach().float().cpu()
    lo, hi = m.amin((1, 2), keepdim=True), m.amax((1, 2), keepdim=True)
    return (m - lo) / (hi - lo + 1e-7)


def _pgc_timed(cam, xin, target, dev, repeat):
    """(timing, maps in [0, 1]) of a pytorch-grad-cam method on ``xin`` for the classes
    ``target``; its hooks are released after (they would otherwise run inside later rows)."""
    import os

    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    targets = [ClassifierOutputTarget(int(t)) for t in target]
    old = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"  # its per-image progress bars
    try:
        t = measure(lambda: cam(input_tensor=xin, targets=targets), dev, warmup=1, repeat=repeat)
        return t, _unit(cam(input_tensor=xin, targets=targets))
    finally:
        cam.activations_and_grads.release()
        if old is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = old


def stylize_workload(dev, size) -> List[Row]:
    """The bundled 'mona' network on one 1920x1080 frame (GPU) or one 512x512 image (CPU):
    the plain network (fp32, eager, NCHW, nearest-upsample decoder) against cvtools' Stylizer
    default, and with --compile."""
    import torch

    from cvtools.style.records import resolve_style
    from cvtools.style.stylize import Stylizer

    quick, tiny = size != "full", size == "tiny"
    h, w = (64, 64) if tiny else (1080, 1920) if dev.type == "cuda" else (512, 512)
    x = torch.nn.functional.interpolate(_batch(1, 64, seed=7), size=(h, w), mode="bilinear", align_corners=False).to(dev)
    plain = resolve_style("mona").load_network(device="cpu").eval().to(dev)
    repeat = 1 if tiny else 30 if dev.type == "cuda" else (3 if quick else 7)
    with torch.inference_mode():
        t = measure(lambda: plain(x), dev, warmup=1 if tiny else 3, repeat=repeat)
        ref = plain(x).float()
    rows = [Row("stylize", "plain fp32 eager NCHW (baseline)", t.median_ms, f"1 image {w}x{h}", 1e3 / t.median_ms,
                "img/s", 1.0, t.first_ms, "reference")]
    # compile=False: the default's steady eager figure (its switch to a cached compiled network,
    # on CUDA, happens at a time of its own; `cvtools bench --warm` measures both forms)
    variants = [("cvtools default", dict(compile=False))]
    if dev.type == "cuda" or not quick:
        variants.append(("cvtools default + compile", dict(compile=True)))
    if dev.type == "cpu":
        variants.append(("cvtools bf16 channels_last", dict(precision="bf16", channels_last=True)))
    for desc, kw in variants:
        st = Stylizer("mona", device=str(dev), **kw)
        t = measure(lambda: st.stylize_tensor(x), dev, warmup=1 if tiny else 3, repeat=repeat)
        out = st.stylize_tensor(x).float()
        check = f"max|Δ|={float((out - ref).abs().max()):.3f}, PSNR {_psnr(out.clamp(0, 1), ref.clamp(0, 1)):.1f} dB"
        rows.append(Row("stylize", desc, t.median_ms, f"1 image {w}x{h}", 1e3 / t.median_ms, "img/s",
                        rows[0].ms / t.median_ms, t.first_ms, check))
    return rows


def painting_workload(dev, size) -> List[Row]:
    """``stylize --style painting.jpg`` (optimisation, no network) with the defaults on one
    1920x1080 photo (GPU) or 512x512 (CPU; 20 steps with --quick), a synthetic painting: the
    plain backbone (unfused fp32 NCHW) against the default (fused, channels-last, bf16 on GPUs)
    and the other optimiser. The check column is the loss reached: compare loss per second."""
    import torch

    from cvtools.backbones import load_backbone
    from cvtools.style.optimize import PaintingStylizer

    gpu, quick, tiny = dev.type == "cuda", size != "full", size == "tiny"
    h, w = (64, 64) if tiny else (1080, 1920) if gpu else (512, 512)
    photo = torch.nn.functional.interpolate(_batch(1, 64, seed=8), size=(h, w), mode="bilinear",
                                            align_corners=False)[0]
    g = torch.Generator().manual_seed(9)
    painting = torch.nn.functional.interpolate(torch.rand(1, 3, 48, 64, generator=g), size=(384, 512),
                                               mode="nearest")[0]  # blocky strokes
    painting = (painting + 0.15 * torch.rand(3, 384, 512, generator=g)).clamp(0, 1)
    steps = {"steps": 2} if tiny else {"steps": 20} if quick and not gpu else {}
    variants = [("plain fp32 unfused NCHW (baseline)", _plain_backbone(dev), {}),
                ("cvtools default (adam)", load_backbone("efficientnet_lite0", device=str(dev),
                                                         precision="bf16" if gpu else "fp32"), {})]
    variants.append(("cvtools default, lbfgs", variants[1][1], {"optimizer": "lbfgs"}))
    if gpu:
        variants.append(("fused fp16 channels_last (adam)", load_backbone("efficientnet_lite0", device=str(dev),
                                                                         precision="fp16"), {}))
    rows = []
    for desc, bb, kw in variants:
        ps = PaintingStylizer(painting, backbone=bb, **steps, **kw)
        t = measure(lambda: ps.optimize(photo), dev, warmup=1, repeat=3 if gpu and not tiny else 1)
        final = ps.last_losses[-1]
        n = ps.total_steps(h, w)
        rows.append(Row("painting", desc, t.median_ms, f"1 image {w}x{h}", 1e3 / t.median_ms, "img/s",
                        1.0 if not rows else rows[0].ms / t.median_ms, t.first_ms,
                        f"loss {final['total']:.3f} (style {final['style']:.3f}, content {final['content']:.3f})",
                        f"{n} steps over {len(ps.last_losses)} levels"))
    return rows


def _train_step(dev, width: float, side: int, batch: int, fast: bool, compiled: bool = False):
    """One train-style step as a function (seeded network, Adam, the perceptual loss against a
    fixed random painting): the plain recipe, or cvtools' (``fast``: fused channels-last loss
    network, bf16 autocast and the network's training form on GPUs)."""
    import torch

    from cvtools.backbones import load_backbone
    from cvtools.style.losses import LossWeights, PerceptualLoss, style_target
    from cvtools.style.network import TransformerNet

    torch.manual_seed(0)
    net = TransformerNet(width).to(dev).train()
    # tune: cuDNN autotuning around the whole step on GPUs, as the Trainer's step has it (one
    # batch shape for thousands of steps); the plain recipe, like pytorch/examples, does not
    tune = fast and dev.type == "cuda"
    bb = load_backbone("efficientnet_lite0", device=str(dev), precision="fp32", fuse=fast, channels_last=fast,
                       tune=tune)
    layers = list(bb.defaults.style)
    loss_fn = PerceptualLoss(bb, style_target(bb, _batch(1, 256, seed=11), layers), layers, bb.defaults.content,
                             LossWeights())
    if fast:
        net = net.to(memory_format=torch.channels_last)
    # what Trainer does on GPUs: the faster form of the same network, parameters shared
    forward = net.for_training() if fast and dev.type == "cuda" else net
    if compiled:
        torch._dynamo.reset()
        forward = torch.compile(forward, dynamic=False)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    x = _batch(batch, side, seed=13).to(dev)
    if fast:
        x = x.contiguous(memory_format=torch.channels_last)
    amp = fast and dev.type == "cuda"

    def step():
        with bb.autotuning(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
            total, _ = loss_fn(forward(x), x)
            opt.zero_grad(set_to_none=True)
            total.backward()
        opt.step()
        return total
    return step


def train_workload(dev, size) -> List[Row]:
    """train-style steps at 256 px (64 px on the CPU) with the shipped width: the plain recipe
    (fp32, NCHW, batch 4, unfused loss network) against cvtools' (bf16 autocast, channels-last,
    fused frozen loss network, batch 64 on GPUs)."""
    from cvtools.style.records import resolve_style

    quick, tiny = size != "full", size == "tiny"
    width = float(resolve_style("mona").network.get("width", 0.5))
    side = 256 if dev.type == "cuda" and not tiny else 64

    def make_step(batch, fast, compiled=False):
        return _train_step(dev, width, side, batch, fast, compiled)

    def loss_curve(batch, fast, steps):
        step = make_step(batch, fast)
        return [float(step().detach()) for _ in range(steps)]

    rows = []
    small = 2 if tiny else 4
    variants = [(f"plain fp32 NCHW batch {small} (baseline)", small, False, False)]
    big = 4 if tiny else 64 if dev.type == "cuda" else 8
    if dev.type == "cuda":
        variants.append((f"cvtools bf16 channels_last fused, batch {big}", big, True, False))
        if not quick:
            variants.append((f"cvtools bf16 channels_last fused + compile, batch {big}", big, True, True))
    else:
        variants.append((f"cvtools fused channels_last, batch {big}", big, True, False))
    # "same loss curve as the plain path": both recipes from the same start on the same batch
    n_check = 2 if tiny else 20 if dev.type == "cuda" else 5
    plain_curve = loss_curve(big, False, n_check)
    fast_curve = loss_curve(big, True, n_check)
    rel = max(abs(a - b) / abs(a) for a, b in zip(plain_curve, fast_curve))
    curve = (f"{n_check}-step loss curve at batch {big} vs plain fp32: max rel. diff {rel:.1%} "
             f"({plain_curve[0]:.3g} -> {plain_curve[-1]:.3g} vs {fast_curve[0]:.3g} -> {fast_curve[-1]:.3g})")
    for desc, batch, fast, compiled in variants:
        step = make_step(batch, fast, compiled)
        t = measure(step, dev, warmup=1 if tiny else 3, repeat=1 if tiny else 20 if dev.type == "cuda" else (2 if quick else 4))
        rate = batch / t.median_ms * 1e3
        rows.append(Row("train-style", desc, t.median_ms, f"1 step of {batch} at {side}px", rate, "img/s",
                        1.0 if not rows else rate / rows[0].throughput, t.first_ms, curve if fast else "",
                        f"width {width}"))
    return rows


def folder_workload(dev, size) -> List[Row]:
    """End to end over a folder of JPEGs (1920x1080 on GPUs, 640x480 on the CPU) through the
    batch runner ``cvtools stylize`` uses (:func:`cvtools.batch.run` with staged work like the
    CLI's: name, decode, stylize, encode, atomic write): every stage one file after another on
    the main thread (the serial baseline), vs decoding and encoding in worker threads overlapped
    with the device work (what the CLI does). The check compares the two runs' output files.
    Each row is a whole run divided by its images: there is no separate first call (first_ms 0;
    the warm-up run before them takes cuDNN's and the allocator's first costs)."""
    import tempfile
    import time
    from pathlib import Path

    import torch

    from cvtools import batch
    from cvtools.style.stylize import Stylizer

    quick, tiny = size != "full", size == "tiny"
    n = 2 if tiny else (8 if quick else 32) if dev.type == "cuda" else (4 if quick else 12)
    h, w = (48, 64) if tiny else (1080, 1920) if dev.type == "cuda" else (480, 640)
    st = Stylizer("mona", device=str(dev), compile=False)  # eager throughout: both variants alike
    st.on_note = None
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        src = _jpeg_folder(Path(tmp) / "in", n, h, w)

        def run(threads, out, inputs=(str(src),)):
            report = batch.run(list(inputs), _stylize_files(st, f"{out}/", threads))
            if report.failed:
                raise RuntimeError(f"folder benchmark: {len(report.failed)} images failed")

        staged = batch.io_threads()
        run(0, Path(tmp) / "warmup", [str(src / "img000.jpg"), str(src / "img001.jpg")])  # cudnn, allocations
        variants = [("decode -> stylize -> encode, serial (baseline)", 0),
                    (f"staged, decode/encode {staged} threads", staged)]
        times = [[] for _ in variants]
        for r in range(1 if tiny else 2 if quick else 3):  # interleaved, so a busy neighbour slows both alike
            for v, (_, threads) in enumerate(variants):
                t0 = time.perf_counter()
                run(threads, Path(tmp) / f"out{v}_{r}")
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                times[v].append(time.perf_counter() - t0)
        ref = Path(tmp) / "out0_0"
        names = sorted(p.name for p in ref.iterdir())
        for v, (desc, threads) in enumerate(variants):
            sec = sorted(times[v])[len(times[v]) // 2]
            rate = n / sec
            check = "reference"
            if rows:
                out = Path(tmp) / f"out{v}_0"
                same = sum((ref / name).read_bytes() == (out / name).read_bytes()
                           for name in names if (out / name).exists())
                check = f"{same}/{len(names)} outputs byte-identical"
            rows.append(Row("folder", desc, sec * 1e3 / n, f"per image, {n} JPEGs {w}x{h}", rate, "img/s",
                            1.0 if not rows else rate / rows[0].throughput, 0.0, check))
    return rows


def _jpeg_folder(src, n: int, h: int, w: int):
    """``n`` h×w JPEGs (one smooth picture, shifted) in the new folder ``src``."""
    import torch

    from cvtools.io.atomic import save_image

    src.mkdir()
    base = torch.nn.functional.interpolate(_batch(1, 48, seed=17), size=(h, w), mode="bilinear")[0]
    for i in range(n):
        save_image(src / f"img{i:03d}.jpg", base.roll(i * 7, dims=2), quality=90)
    return src


def _stylize_files(stylizer, output, threads):
    """``cvtools stylize``'s stages over files (as its CLI builds them, without the notes and
    bars): name the output, decode, stylize as uint8, encode and write atomically."""
    from cvtools.batch import StagedWork
    from cvtools.io.atomic import save_image
    from cvtools.io.decode import load_image
    from cvtools.io.naming import output_path_for

    targets = {}

    def prepare(path):
        targets[path] = output_path_for(path, output, stylizer.name, many=True, overwrite=True)

    def load(path):
        image = load_image(path)
        return image.rgb, image.alpha

    def compute(path, item):
        rgb, alpha = item
        return targets.pop(path), stylizer(rgb, tile="auto", as_uint8=True), alpha

    def save(path, pending):
        target, result, alpha = pending
        save_image(target, result, alpha=alpha, quality=95)

    return StagedWork(load=load, compute=compute, save=save, prepare=prepare, threads=threads)


def _no_tf32():
    """A context with TF32 off for cuDNN convolutions and CUDA matrix products (restored after)."""
    import contextlib

    import torch

    @contextlib.contextmanager
    def off():
        matmul = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = False
        try:
            with torch.backends.cudnn.flags(enabled=torch.backends.cudnn.enabled, allow_tf32=False):
                yield
        finally:
            torch.backends.cuda.matmul.allow_tf32 = matmul

    return off()


def _vit_reshape(tokens, grid: int):
    """pytorch-grad-cam's ``vit_reshape_transform`` (its tutorial's): drop the class token, lay
    the patch tokens on the grid, channels first."""
    return tokens[:, 1:, :].reshape(tokens.size(0), grid, grid, tokens.size(2)).permute(0, 3, 1, 2)


def _pgc_user_gradcam(module, arch: str, xin, target, layer_size, dev, repeat: int):
    """(timing, maps at the layer's resolution in true fp32) of pytorch-grad-cam's GradCAM on a
    torchvision ``module``: its ViT tutorial's target layer and reshape for vit_b_16, the last
    bottleneck for ResNets. ImportError when pytorch-grad-cam is not installed."""
    import torch
    from pytorch_grad_cam import GradCAM as PGC
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    target_layer = module.encoder.layers[-1].ln_1 if arch == "vit_b_16" else module.layer4[-1]
    reshape = (lambda t: _vit_reshape(t, 14)) if arch == "vit_b_16" else None
    cam = PGC(model=module, target_layers=[target_layer], reshape_transform=reshape)
    h, w = layer_size
    cam.get_target_width_height = lambda tensor: (w, h)  # its maps at the layer's resolution
    xin = xin.requires_grad_(True)
    targets = [ClassifierOutputTarget(int(t)) for t in target]
    try:
        t = measure(lambda: cam(input_tensor=xin, targets=targets), dev, warmup=1, repeat=repeat)
        with _no_tf32():
            return t, torch.as_tensor(cam(input_tensor=xin, targets=targets)).float()
    finally:
        cam.activations_and_grads.release()


def user_gradcam_workload(dev, size) -> List[Row]:
    """Grad-CAM on networks users bring (issue 27): torchvision resnet50 and vit_b_16 with random
    weights, batch 64 at 224 px (4 on the CPU, 2 with --quick), loaded through
    ``load_user_model``. Baseline: pytorch-grad-cam (when installed; benchmark only) on the plain
    fp32 module, its ViT tutorial's target layer (the last block's first norm) and
    ``vit_reshape_transform``; then cvtools fp32 unfused on the same module (the check: both maps
    min-max scaled at the layer's resolution, max|Δ|) and cvtools' default (BatchNorm folded, fp16
    and channels-last on a GPU). Each network is a group of rows; without pytorch-grad-cam, cvtools
    fp32 is the group's baseline. Tiny: resnet18 and vit_b_16, one image (vit_b_16 takes 224 px
    only)."""
    import torch
    import torchvision

    from cvtools.backbones import load_user_model
    from cvtools.visualize.cam import cam_from_gradients, gradcam, layer_gradients, minmax

    gpu, quick, tiny = dev.type == "cuda", size != "full", size == "tiny"
    n = 1 if tiny else 64 if gpu else (2 if quick else 4)
    x = _batch(n, 224, seed=7).to(dev)
    rows = []
    for arch in ("resnet18" if tiny else "resnet50", "vit_b_16"):
        torch.manual_seed(0)
        net = getattr(torchvision.models, arch)(weights=None).eval()
        if arch == "vit_b_16":  # torchvision starts the head at zero: every gradient would be 0
            torch.nn.init.normal_(net.heads.head.weight, std=0.02)
        plain = load_user_model(net, device=str(dev), fuse=False, precision="fp32", channels_last=False)
        fast = load_user_model(net, device=str(dev))
        layer = plain.defaults.cam
        with torch.no_grad():
            target = plain(x).argmax(1)
        # The check runs in true fp32: cuDNN's default TF32 convolutions (10 mantissa bits) would
        # differ between the two libraries' call patterns at ~1e-3; the timings keep the defaults.
        with _no_tf32():
            ours = layer_gradients(plain, x, target, layer)
            ref_map = minmax(cam_from_gradients(ours.activation, ours.gradient))[:, 0].float().cpu()
        base = None
        try:
            t, theirs = _pgc_user_gradcam(net.to(dev), arch, plain.normalize(x), target, ref_map.shape[-2:], dev,
                                          repeat=1 if tiny else 10 if gpu else 2)
            base = t.median_ms
            rows.append(Row("user-gradcam", f"{arch} pytorch-grad-cam fp32 (baseline)", t.median_ms, f"{n} images",
                            n / t.median_ms * 1e3, "img/s", 1.0, t.first_ms, "reference", group=arch))
            check = f"max|Δ| vs pytorch-grad-cam at the layer {float((ref_map - theirs).abs().max()):.1e}"
        except ImportError:
            check = "pytorch-grad-cam not installed"
        same = "(same module)" if base is not None else "(baseline)"
        for desc, bb in [(f"{arch} cvtools fp32 {same}", plain), (f"{arch} cvtools default", fast)]:
            t = measure(lambda: gradcam(bb, x, target, layer=layer), dev, warmup=1 if tiny else 2,
                        repeat=1 if tiny else 20 if gpu else 2)
            base = base or t.median_ms
            rows.append(Row("user-gradcam", desc, t.median_ms, f"{n} images", n / t.median_ms * 1e3, "img/s",
                            base / t.median_ms, t.first_ms, check if bb is plain else f"{fast.fast_path}", group=arch))
    return rows


WORKLOADS: Dict = {
    "backbone": backbone_classify,
    "stylize": stylize_workload,
    "train-style": train_workload,
    "dream": dream_workload,
    "gradcam": gradcam_workload,
    "painting": painting_workload,
    "cams": cams_workload,
    "folder": folder_workload,
    "user-gradcam": user_gradcam_workload,
}
