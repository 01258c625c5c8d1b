"""The image transformation network of Johnson et al. 2016 ("Perceptual Losses for Real-Time
Style Transfer"), with the later fixes everyone uses: instance normalisation (Ulyanov et al.)
instead of batch norm, reflection padding, and nearest-neighbour upsampling followed by a
convolution instead of transposed convolutions (those leave checkerboard artifacts).

Layout: 9×9 conv in → two stride-2 3×3 convs → N residual blocks → two (upsample ×2 → 3×3 conv)
stages → 9×9 conv out. ``width`` scales every channel count (1.0 is the paper's 32/64/128); the
bundled styles use a lighter width so that a 512×512 image stylizes in well under half a second
on two CPU cores (BENCHMARKS.md has the numbers behind the choice).

Instance norm normally normalises each image by its own statistics. For tiled inference of
images too large for memory, every :class:`SharedStatsInstanceNorm` can *record* the statistics
of one pass (over the whole image, or jointly over full-resolution crops spread across it) and
then *reuse* them for each tile, so all tiles are normalised alike and no seams appear.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from cvtools.style.limits import MAX_RESIDUAL_BLOCKS, MAX_WIDTH, MIN_WIDTH, check_architecture  # noqa: F401

#: Channel counts of the paper's network (width 1.0).
BASE_CHANNELS = (32, 64, 128)


def parameter_shapes(width: float, residual_blocks: int) -> Dict[str, Tuple[int, ...]]:
    """The state dict's tensor shapes of ``TransformerNet(width, residual_blocks)``, computed on
    the ``meta`` device (no memory): what a weights file must hold, checked before loading it."""
    width, residual_blocks = check_architecture(width, residual_blocks)
    with torch.device("meta"):
        net = TransformerNet(width, residual_blocks)
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


def channels_for(width: float) -> Tuple[int, int, int]:
    """Channel counts for a width multiplier (rounded to multiples of 8: friendlier to kernels)."""
    return tuple(max(8, int(round(c * width / 8)) * 8) for c in BASE_CHANNELS)


def _instance_norm_channels_last(x, weight, bias, eps):
    """Instance norm of an N×C×H×W channels-last tensor, computed on its N×(H·W)×C view.

    PyTorch's own instance norm converts channels-last input to channels-first and back (two
    extra copies, and on the CPU a slow strided reduction: measured 4-10× slower than this);
    here the statistics are a reduction down contiguous columns and the affine step is one
    broadcast multiply-add, in place of the layout's natural order.
    """
    n, c, h, w = x.shape
    v = x.permute(0, 2, 3, 1).reshape(n, h * w, c)  # a view: channels-last memory is N, H, W, C
    # CUDA reductions accumulate half precision in fp32 already; an fp32 copy of the whole map
    # first cost more than the reduction itself (profiled at 1080p: 31 copies, 1.7 ms of 12.7).
    var, mean = torch.var_mean(v if v.is_cuda else v.float(), dim=1, keepdim=True, unbiased=False)
    var, mean = var.float(), mean.float()
    scale = weight.float() * torch.rsqrt(var + eps)
    shift = bias.float() - mean * scale
    out = torch.addcmul(shift.to(x.dtype), v, scale.to(x.dtype))
    return out.reshape(n, h, w, c).permute(0, 3, 1, 2)


class SharedStatsInstanceNorm(nn.InstanceNorm2d):
    """Affine instance norm whose per-image statistics can be shared between tiles.

    mode ``None``: plain instance norm. ``"record"``: plain, and keep the (mean, var) it used.
    ``"joint"``: keep one (mean, var) over all images of the batch (crops of one large image)
    and normalise them all with it. ``"reuse"``: normalise with the kept statistics.
    """

    def __init__(self, channels: int):
        super().__init__(channels, affine=True, eps=1e-5)
        self.mode: Optional[str] = None
        self.stats: Optional[Tuple[torch.Tensor, torch.Tensor]] = None

    def forward(self, x):
        if self.mode is None:
            if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and x.shape[1] > 1:
                return _instance_norm_channels_last(x, self.weight, self.bias, self.eps)
            return super().forward(x)
        if self.mode in ("record", "joint"):
            dims = (2, 3) if self.mode == "record" else (0, 2, 3)
            var, mean = torch.var_mean(x.float(), dim=dims, keepdim=True, unbiased=False)
            self.stats = (mean, var)
        mean, var = self.stats
        scale = self.weight.float().view(1, -1, 1, 1) * torch.rsqrt(var + self.eps)
        shift = self.bias.float().view(1, -1, 1, 1) - mean * scale
        return (x.float() * scale + shift).to(x.dtype)


def _strictly_channels_last(x: torch.Tensor) -> bool:
    """A 4-D map stored channels-last and not also channels-first (1-channel or 1×1 maps are
    both, and need no care)."""
    return x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def _pad_channels_last(x: torch.Tensor, pads: Tuple[int, int, int, int], mode: str) -> torch.Tensor:
    """``F.pad(x, pads, mode)`` ("reflect" or "replicate"; pads: left, right, top, bottom),
    written straight into a channels-last result: one copy of the interior, then the borders
    from it (the columns, then whole rows including the corners)."""
    left, right, top, bottom = pads
    n, c, h, w = x.shape
    out = torch.empty((n, c, h + top + bottom, w + left + right), dtype=x.dtype, device=x.device,
                      memory_format=torch.channels_last)
    out[:, :, top:top + h, left:left + w] = x
    rows = out[:, :, top:top + h]
    reflect = mode == "reflect"
    if left:
        rows[..., :left] = x[..., 1:left + 1].flip(-1) if reflect else x[..., :1]
    if right:
        rows[..., left + w:] = x[..., w - right - 1:w - 1].flip(-1) if reflect else x[..., w - 1:]
    if top:
        out[:, :, :top] = out[:, :, top + 1:2 * top + 1].flip(-2) if reflect else out[:, :, top:top + 1]
    if bottom:
        end = top + h
        out[:, :, end:] = out[:, :, end - bottom - 1:end - 1].flip(-2) if reflect else out[:, :, end - 1:end]
    return out


def pad2d(x: torch.Tensor, pads: Tuple[int, int, int, int], mode: str) -> torch.Tensor:
    """``F.pad(x, pads, mode=mode)`` for "reflect" and "replicate", keeping a CUDA channels-last
    map channels-last.

    CUDA's reflection and replication pads make their input channels-first and return it so;
    in this channels-last network every pad then cost three passes over the map (the layout
    change, the pad, cuDNN's change back): profiled on an H200, a batch of eight 1080p frames
    spent 29 of its 49 ms there (benchmarks/folder/results/profile_network_h200_2026-12-04.json);
    with this pad the batch takes 33.4 ms instead of 48.4, the same values to the bit. One photo
    at a time measured the other way (7.8 ms with F.pad, 9.9 ms with this), so single images keep
    F.pad. CPUs keep the layout in F.pad already; compiled graphs fuse the pad: both keep F.pad."""
    if (x.is_cuda and _strictly_channels_last(x) and x.shape[0] > 1 and not torch.compiler.is_compiling()
            and (mode == "replicate" or max(pads[:2]) < x.shape[-1] and max(pads[2:]) < x.shape[-2])):
        return _pad_channels_last(x, pads, mode)
    return F.pad(x, pads, mode=mode)


class ReflectionPad(nn.ReflectionPad2d):
    """nn.ReflectionPad2d through :func:`pad2d` (the same module otherwise: no state, same repr)."""

    def forward(self, x):
        return pad2d(x, tuple(self.padding), "reflect")


class ConvLayer(nn.Sequential):
    """Reflection pad → conv (padding by reflection keeps image borders free of dark rims)."""

    def __init__(self, in_ch, out_ch, kernel, stride=1):
        super().__init__(ReflectionPad(kernel // 2), nn.Conv2d(in_ch, out_ch, kernel, stride))


class ConvNormReLU(nn.Sequential):
    def __init__(self, in_ch, out_ch, kernel, stride=1, upsample=False):
        layers: List[nn.Module] = [nn.Upsample(scale_factor=2, mode="nearest")] if upsample else []
        layers += [ConvLayer(in_ch, out_ch, kernel, stride), SharedStatsInstanceNorm(out_ch), nn.ReLU(inplace=True)]
        super().__init__(*layers)


def _subpixel_map(device) -> torch.Tensor:
    """M[a, k, u] = 1 where tap k (0, 1, 2) of a 3×3 kernel on the ×2 nearest-upsampled image,
    at output phase a (0, 1), reads low-resolution tap u (0, 1, 2 = offset -1, 0, +1)."""
    taps = {0: (0, 1, 1), 1: (1, 1, 2)}
    m = torch.zeros(2, 3, 3, device=device)
    for a in (0, 1):
        for k in range(3):
            m[a, k, taps[a][k]] = 1.0
    return m


def _space_to_depth_map(kernel: int, block: int, device) -> torch.Tensor:
    """P[a, r, u, d] = 1 where kernel tap d, for output phase a, reads input phase r of
    low-resolution block offset u (d = block·u + r - a)."""
    taps = (2 * block - 2 + kernel) // block
    m = torch.zeros(block, block, taps, kernel, device=device)
    for a in range(block):
        for r in range(block):
            for u in range(taps):
                d = block * u + r - a
                if 0 <= d < kernel:
                    m[a, r, u, d] = 1.0
    return m


class _RearrangedConv(nn.Module):
    """A convolution whose weights are a fixed linear rearrangement of another convolution's.

    Inference (``live=False``): the rearranged weights are computed once and stored. Training
    (``live=True``): the source convolution is kept (its parameters shared with the network
    being trained) and the weights are rearranged on every forward, a few kilobytes of einsum,
    so gradients reach the source parameters exactly as through the original layers.
    """

    def __init__(self, source: nn.Conv2d, live: bool):
        super().__init__()
        self.live = live
        if live:
            self.source = source
            self.register_buffer("map", self.make_map(source.weight.device), persistent=False)
        else:
            with torch.no_grad():
                m = self.make_map(source.weight.device)
                w, b = self.rearrange(source.weight.detach().float(), self._bias(source).float(), m)
            self.weight = nn.Parameter(w.to(source.weight.dtype), requires_grad=False)
            self.bias = nn.Parameter(b.to(source.weight.dtype), requires_grad=False)

    @staticmethod
    def _bias(conv):
        return conv.bias if conv.bias is not None else torch.zeros(conv.out_channels, device=conv.weight.device)

    def weights(self):
        if self.live:
            return self.rearrange(self.source.weight, self._bias(self.source), self.map.to(self.source.weight.dtype))
        return self.weight, self.bias

    def make_map(self, device):  # pragma: no cover - abstract
        raise NotImplementedError

    def rearrange(self, w, b, m):  # pragma: no cover - abstract
        raise NotImplementedError


class SubPixelUpsampleConv(_RearrangedConv):
    """Exactly ``conv3x3(reflect_pad(upsample_nearest_x2(x)))``, computed at the low resolution.

    Each of the four output phases of a 3×3 convolution over a nearest-upsampled image only sees
    a 2×2 neighbourhood of the low-resolution input, so one 3×3 convolution with 4× the output
    channels on the low-resolution input (edge-replicated: reflecting the upsampled image at
    its border reads the same pixels) followed by a pixel shuffle gives the same result
    without ever materialising the 4× larger upsampled and padded maps. Built from a trained
    stage by :meth:`TransformerNet.for_inference` (or, live, by :meth:`TransformerNet.for_training`).
    """

    def __init__(self, conv: nn.Conv2d, live: bool = False):
        super().__init__(conv, live)

    def make_map(self, device):
        return _subpixel_map(device)

    def rearrange(self, w, b, m):
        o, c = w.shape[:2]
        new = torch.einsum("ockl,aku,blv->oabcuv", w, m, m)
        return new.reshape(4 * o, c, 3, 3), b.repeat_interleave(4)

    def forward(self, x):
        w, b = self.weights()
        y = F.conv2d(pad2d(x, (1, 1, 1, 1), "replicate"), w, b)
        return _keep_layout(F.pixel_shuffle(y, 2), x)


def _keep_layout(y, like):
    """``y`` in ``like``'s memory format. Pixel (un)shuffle returns channels-first strides even for
    channels-last input, which sent the next instance norm down PyTorch's slow path (profiled:
    4 ms of a 12.7 ms 1080p frame on an H200)."""
    if _strictly_channels_last(like):
        return y.contiguous(memory_format=torch.channels_last)
    return y


class SpaceToDepthConv(_RearrangedConv):
    """Exactly ``conv_k×k(reflect_pad(x, k//2))`` (stride 1), computed as a 3×3 convolution on
    ``pixel_unshuffle(·, block)`` followed by ``pixel_shuffle``.

    The network's 9×9 input (3 → c1 channels) and output (c1 → 3) convolutions have so few
    channels on one side that GPU tensor-core kernels run nearly empty (profiled at 1080p on an
    H200: 2.0 of 3.6 ms compiled). Folding each 4×4 block of pixels into channels gives the same
    arithmetic as a convolution with 16× the channels on 1/16 of the pixels (1.8× the
    multiply-adds, all of them useful to the hardware). Built from a :class:`ConvLayer` by
    :meth:`TransformerNet.for_inference` (or, live, by :meth:`TransformerNet.for_training`).
    """

    def __init__(self, layer: "ConvLayer", block: int = 4, live: bool = False):
        conv = layer[1]
        k = conv.kernel_size[0]
        assert conv.stride == (1, 1) and k % 2 == 1 and conv.kernel_size == (k, k)
        self.block, self.pad, self.kernel = block, k // 2, k
        super().__init__(conv, live)

    def make_map(self, device):
        return _space_to_depth_map(self.kernel, self.block, device)

    def rearrange(self, w, b, m):
        o, c = w.shape[:2]
        bb, taps = self.block * self.block, m.shape[2]
        new = torch.einsum("ocyx,aruy,bsvx->oabcrsuv", w, m, m)
        return new.reshape(o * bb, c * bb, taps, taps), b.repeat_interleave(bb)

    def forward(self, x):
        h, w = x.shape[-2:]
        p, s = self.pad, self.block
        inp = x
        x = pad2d(x, (p, p, p, p), "reflect")
        # zeros up to whole blocks: they only reach outputs past the image, cropped below
        eh, ew = (-x.shape[-2]) % s, (-x.shape[-1]) % s
        if eh or ew:
            x = F.pad(x, (0, ew, 0, eh))
        x = _keep_layout(F.pixel_unshuffle(x, s), inp)
        weight, bias = self.weights()
        return _keep_layout(F.pixel_shuffle(F.conv2d(x, weight, bias), s)[..., :h, :w], inp)


class ResidualBlock(nn.Module):
    """conv-IN-ReLU-conv-IN plus the identity (He et al.; no ReLU after the sum, as in Johnson's)."""

    def __init__(self, ch):
        super().__init__()
        self.body = nn.Sequential(
            ConvLayer(ch, ch, 3), SharedStatsInstanceNorm(ch), nn.ReLU(inplace=True),
            ConvLayer(ch, ch, 3), SharedStatsInstanceNorm(ch),
        )

    def forward(self, x):
        return x + self.body(x)


def _drop_biases_before_norms(net: nn.Module) -> None:
    """Remove the bias of every convolution whose output goes straight into an instance norm.

    The norm subtracts each channel's mean, so a per-channel constant added before it changes
    nothing (exactly, in real arithmetic), and on CUDA cuDNN's channels-last convolutions add the
    bias as a pass of its own over the map (`aten::add_`: ~13 % of the eager network's GPU time at
    8 × 1080p on an H200, benchmarks/folder/results/profile_network_h200_2026-12-04.json)."""
    for seq in net.modules():
        if not isinstance(seq, nn.Sequential):
            continue
        layers = list(seq)
        for conv, norm in zip(layers, layers[1:]):
            if not isinstance(norm, SharedStatsInstanceNorm):
                continue
            if isinstance(conv, ConvLayer):
                conv[1].bias = None
            elif isinstance(conv, _RearrangedConv) and not conv.live:
                conv.bias = None


class TransformerNet(nn.Module):
    """Photo → stylized photo, both N×3×H×W in [0, 1]. Any H, W ≥ 8 (odd sizes are padded).

    width: channel multiplier (1.0 = the paper's 32/64/128). residual_blocks: 5 as in the paper.
    """

    def __init__(self, width: float = 1.0, residual_blocks: int = 5):
        super().__init__()
        c1, c2, c3 = channels_for(width)
        self.width = float(width)
        self.residual_blocks = int(residual_blocks)
        self.encoder = nn.Sequential(
            ConvNormReLU(3, c1, 9), ConvNormReLU(c1, c2, 3, stride=2), ConvNormReLU(c2, c3, 3, stride=2))
        self.residuals = nn.Sequential(*[ResidualBlock(c3) for _ in range(residual_blocks)])
        self.decoder = nn.Sequential(
            ConvNormReLU(c3, c2, 3, upsample=True), ConvNormReLU(c2, c1, 3, upsample=True))
        self.output = ConvLayer(c1, 3, 9)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        # Two stride-2 stages: sizes that are not multiples of 4 are reflection-padded and cropped
        # back, so the output always has the input's size.
        ph, pw = (-h) % 4, (-w) % 4
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="reflect" if min(h, w) > max(ph, pw) else "replicate")
        y = self.output(self.decoder(self.residuals(self.encoder(x))))
        # A sigmoid (not a clamp) maps to [0, 1]: saturated colours still get gradients while
        # training, so the network learns to avoid blown-out regions instead of hiding them.
        y = torch.sigmoid(y)
        return y[..., :h, :w] if (ph or pw) else y

    def for_inference(self, space_to_depth: bool = False) -> "TransformerNet":
        """A copy computing the same function faster: the upsample→conv stages become
        sub-pixel convolutions (see :class:`SubPixelUpsampleConv`); with ``space_to_depth``
        the 9×9 input and output convolutions also become :class:`SpaceToDepthConv` (faster on
        GPUs); the convolutions feeding an instance norm lose the bias it cancels. Not for
        training (the weights are rearranged; save the original network)."""
        import copy

        net = copy.deepcopy(self).eval()
        for stage in net.decoder:
            if isinstance(stage[0], nn.Upsample):
                conv = stage[1][1]
                stage[0] = nn.Identity()
                stage[1] = SubPixelUpsampleConv(conv)
        if space_to_depth:
            net.encoder[0][0] = SpaceToDepthConv(net.encoder[0][0])
            net.output = SpaceToDepthConv(net.output)
        _drop_biases_before_norms(net)
        return net

    def for_training(self) -> "TransformerNet":
        """A view of this network that computes the same function and the same gradients
        faster, sharing its parameters: train through the view, save and load this network.

        The forms of :meth:`for_inference` (sub-pixel decoder, space-to-depth 9×9 convolutions)
        with weights rearranged from the shared parameters on every forward (see
        :class:`_RearrangedConv`). Measured on an H200, batch 64 at 256 px: BENCHMARKS.md.
        """
        view = TransformerNet.__new__(TransformerNet)
        nn.Module.__init__(view)
        view.width, view.residual_blocks = self.width, self.residual_blocks
        first = self.encoder[0]
        view.encoder = nn.Sequential(nn.Sequential(SpaceToDepthConv(first[0], live=True), *list(first)[1:]),
                                     *list(self.encoder)[1:])
        view.residuals = self.residuals
        view.decoder = nn.Sequential(*[
            nn.Sequential(SubPixelUpsampleConv(stage[1][1], live=True), *list(stage)[2:])
            if isinstance(stage[0], nn.Upsample) else stage
            for stage in self.decoder])
        view.output = SpaceToDepthConv(self.output, live=True)
        view.train(self.training)
        return view

    # ------------------------------------------------------------------ shared statistics
    def norms(self) -> List[SharedStatsInstanceNorm]:
        return [m for m in self.modules() if isinstance(m, SharedStatsInstanceNorm)]

    @contextmanager
    def norm_mode(self, mode: Optional[str]) -> Iterator[None]:
        """Within the block every instance norm records (``"record"``) or reuses (``"reuse"``)."""
        norms = self.norms()
        old = [n.mode for n in norms]
        for n in norms:
            n.mode = mode
        try:
            yield
        finally:
            for n, m in zip(norms, old):
                n.mode = m


def count_flops(net: nn.Module, height: int, width: int, *extra_shapes) -> int:
    """Multiply-adds × 2 of the convolutions for one H×W image (the arithmetic that matters).

    Runs a copy of the network on the ``meta`` device: shapes only, no compute, no memory.
    ``extra_shapes``: shapes of further forward arguments (the arbitrary-style network's style
    parameters), passed as meta tensors after the image.
    """
    import copy

    total = 0

    def hook(mod, inp, out):
        nonlocal total
        k = mod.kernel_size[0] * mod.kernel_size[1]
        total += 2 * out.numel() // out.shape[0] * k * mod.in_channels // mod.groups

    probe = copy.deepcopy(net).to("meta")
    for m in probe.modules():
        if isinstance(m, nn.Conv2d):
            m.register_forward_hook(hook)
    with torch.no_grad():
        probe(torch.zeros(1, 3, height, width, device="meta"), *(torch.zeros(shape, device="meta")
                                                                  for shape in extra_shapes))
    return total
