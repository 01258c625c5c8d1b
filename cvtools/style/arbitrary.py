"""Arbitrary style transfer in one pass: any painting, any photo, one network (issue #28).

After Ghiasi et al. 2017, "Exploring the structure of a real-time, arbitrary neural artistic
stylization network". Two parts:

- a **style encoder**: the painting goes through the shared frozen backbone (EfficientNet-Lite0,
  the same network the losses use), the per-channel means and standard deviations of a few of
  its blocks are pooled into one vector, and a small trainable MLP maps that to a
  low-dimensional **embedding** (406 numbers in the shipped network: 400 the encoder writes, and six
  style tokens, 0 for every painting, that the bundled names' stored embeddings use to carry their
  fitted style parameters: tools/bundled_style_tokens.py). Only the MLP is trained and saved; the trunk is
  the embedded backbone.
- a **conditional transformer**: a Johnson-style feed-forward network (our
  :class:`~cvtools.style.network.TransformerNet` layout) whose every instance norm takes its
  scale and shift (gamma, beta) from the embedding through a linear head.

Because the heads are linear, everything done to embeddings is done to the network's
normalisation parameters: a **blend** of paintings is the weighted mean of their embeddings,
and a **strength** s is ``(1 - s)·embedding(photo) + s·embedding(painting)`` (the photo's own
style at 0, the painting's at 1). Half way, strokes keep their shape and lose their contrast,
where mixing pixels would lay a faint copy of the strokes over the photo.

The transformer's shape was chosen by measuring (benchmarks/arbitrary/PLAN.md): a 1024×683
photo must take at most 0.5 s of network time on 2 CPU cores (fp32), where the bundled
half-width TransformerNet takes ~1.1 s. Folding 2×2 pixels into channels at both ends (no
full-resolution feature maps) and 32/64/96 channels at 1/2, 1/4, 1/8 take ~0.22-0.30 s there,
and a 1080p frame 3.2 ms on an H200 (fp16, eager).

>>> st = ArbitraryStylizer()                         # the bundled network (or a weights path)
>>> style = st.encode(painting)                      # 3×H×W in [0, 1] -> embedding
>>> mix = st.blend([(style, 0.7), (st.encode(other), 0.3)])
>>> out = st.stylize(photo, mix, strength=0.8)       # 3×H×W in, 3×H×W out
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from cvtools.errors import UsageError, WeightsError
from cvtools.style.network import ReflectionPad

#: written in the weights file's metadata; a file without it is not an arbitrary-style network
WEIGHTS_FORMAT = "cvtools-arbitrary-style-1"
#: bounds on what a weights file may declare (checked before anything is built from it)
MAX_CHANNELS = 512
MAX_RESIDUAL_BLOCKS = 16
MAX_EMBEDDING = 2048
#: the network cvtools ships (trained by benchmarks/train_arbitrary.py): its record holds the
#: weights' SHA-256, the recipe, the held-out paintings and the bundled styles' embeddings
BUNDLED_RECORD = Path(__file__).resolve().parent / "bundled" / "arbitrary.json"


def bundled_record() -> Dict:
    """The shipped network's record (a dict; WeightsError when the package lacks it)."""
    try:
        record = json.loads(BUNDLED_RECORD.read_text())
    except (OSError, ValueError) as exc:
        raise WeightsError(f"{BUNDLED_RECORD}: the bundled any-painting network's record is missing or "
                           f"broken ({exc.__class__.__name__}); reinstall cvtools") from None
    return record


def bundled_weights() -> Tuple[Path, str]:
    """(weights path, pinned SHA-256) of the shipped network."""
    record = bundled_record()
    return BUNDLED_RECORD.parent / record["weights"], record["sha256"]


def bundled_style_embedding(name: str) -> torch.Tensor:
    """The embedding of a bundled style's painting (stored in the record: the paintings do not
    ship), for blends that name bundled styles. KeyError for a name without one."""
    values = bundled_record().get("style_embeddings", {})[name]
    return torch.tensor(values, dtype=torch.float32)


def bundled_embedding_names() -> List[str]:
    return sorted(bundled_record().get("style_embeddings", {}))


def style_token_count(weights=None) -> int:
    """How many style tokens end the embedding of the network in ``weights`` (None: the shipped
    one, whose record names them: tools/bundled_style_tokens.py); another weights file has none."""
    if weights is not None:
        return 0
    return len(bundled_record().get("style_tokens", {}).get("names", []))


def checked_embedding(style: torch.Tensor, embedding_dim: int) -> torch.Tensor:
    """A 1-D embedding of ``embedding_dim`` finite values as fp32 on the CPU, else a one-line
    UsageError saying which (NaN or inf would paint a picture of NaN)."""
    if style.shape[0] != embedding_dim:
        raise UsageError(f"an embedding must be {embedding_dim} numbers, not shape {list(style.shape)}",
                         param="styles")
    if not bool(torch.isfinite(style).all()):
        raise UsageError("the embedding has NaN or infinite values", param="styles")
    return style.detach().float().cpu()


def with_token_places(style, embedding_dim: int, tokens: int):
    """``style`` as the network takes it now: an embedding saved before the network grew its
    ``tokens`` style tokens (``embedding_dim - tokens`` values) gets zeros in the token places,
    which is what a painting's encoding has there, so it paints exactly as it did. Anything else
    is returned as it is (the caller checks the shape)."""
    if (tokens > 0 and isinstance(style, torch.Tensor) and style.dim() == 1
            and style.shape[0] == embedding_dim - tokens):
        return torch.cat([style.detach().float().cpu(), torch.zeros(tokens)])
    return style


@dataclass
class ArbitraryConfig:
    """The shape of an arbitrary-style network (saved in its weights file).

    channels: transformer widths, full resolution first; one stride-2 stage per extra entry.
    residual: "full" (two 3×3 convolutions, Johnson's) or "separable" (depthwise 3×3 +
    pointwise 1×1, ~8× fewer multiply-adds at 64 channels).
    """

    channels: Tuple[int, ...] = (32, 64, 96)
    #: pixels folded into channels before the first convolution (and unfolded after the last):
    #: 2 keeps every feature map at half resolution or less; on the CPU, passes over
    #: full-resolution 16-channel maps were most of the bundled network's time (PLAN.md)
    space_to_depth: int = 2
    residual_blocks: int = 5
    residual: str = "full"
    #: 5×5 at half resolution: about the reach of the bundled network's 9×9 at full resolution
    in_kernel: int = 5
    out_kernel: int = 5
    embedding_dim: int = 100
    #: backbone blocks whose channel means and standard deviations describe the painting:
    #: colour (blocks.0) through brush texture (2, 4, 7) to larger motifs (10, 15)
    encoder_layers: Tuple[str, ...] = ("blocks.0", "blocks.2", "blocks.4", "blocks.7", "blocks.10", "blocks.15")
    #: channels of those layers in the backbone (checked against it when it is loaded)
    encoder_channels: Tuple[int, ...] = (16, 24, 40, 80, 112, 320)
    encoder_hidden: int = 256
    #: the painting's short side for the encoder. 256 px: the size the paintings' crops had in
    #: training, so the statistics mean at inference what they meant there (strokes are
    #: measured in pixels of this size), and a 30 ms encoder pass on 2 CPU cores
    encoder_size: int = 256
    #: when > 0, the painting's LONG side for the encoder instead (``encoder_size`` is then
    #: unused). Training crops are 256-px squares cut from paintings stored at a 512-px long
    #: side (covering 10-100 % of the area), so the strokes they show are on average about as
    #: large as the painting's at a 512-px long side; encoding whole paintings at a 256-px short
    #: side showed the network smaller strokes than that (PLAN.md, 2026-12-05)
    encoder_long_side: int = 0
    #: when > 0, a full-resolution stage: the output convolution makes this many more channels
    #: per full-resolution pixel, and after the pixel unfold a ReLU and a 3×3 convolution turn
    #: them into a residual added to the colour before the sigmoid. The fold leaves no
    #: full-resolution convolution otherwise, and the network's distance to the trained ones is
    #: widest in the finest texture (benchmarks/arbitrary/PLAN.md, 2026-12-05). The residual
    #: convolution starts at zero, so a network grown from one without the stage starts as it was
    fine_channels: int = 0
    #: when > 0, this many more residual blocks (``residual``'s kind) after EACH upsampling stage,
    #: at that stage's channels (1/4 and 1/2 resolution in the shipped shape: where the strokes
    #: are drawn). Runs L, A4 and A8 (benchmarks/arbitrary/PLAN.md) widened the transformer
    #: (channels, embedding, a full-resolution stage) and moved the quality targets by at most
    #: ±3 %; a deeper, multi-scale decoder was the capacity lever not yet tried. Their norms' gamma
    #: and beta come last in the style parameters, and each block's second norm starts at gamma =
    #: beta = 0 for every embedding (its head rows are zero), so the blocks start as the identity
    #: and a network grown from one without them starts exactly as it was
    decoder_blocks: int = 0
    backbone: str = "efficientnet_lite0"

    def check(self) -> "ArbitraryConfig":
        """Every field's type and range; ValueError saying which is wrong."""
        ch = self.channels
        if not isinstance(ch, (list, tuple)) or not 2 <= len(ch) <= 5 or not all(
                isinstance(c, int) and not isinstance(c, bool) and 4 <= c <= MAX_CHANNELS for c in ch):
            raise ValueError(f"channels {ch!r} must be 2-5 whole numbers of 4-{MAX_CHANNELS}")
        self.channels = tuple(ch)
        whole = {"residual_blocks": (0, MAX_RESIDUAL_BLOCKS), "space_to_depth": (1, 4), "in_kernel": (1, 15), "out_kernel": (1, 15),
                 "embedding_dim": (1, MAX_EMBEDDING), "encoder_hidden": (1, 8192), "encoder_size": (32, 2048),
                 "fine_channels": (0, 64), "decoder_blocks": (0, 4)}
        for key, (lo, hi) in whole.items():
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise ValueError(f"{key} {v!r} must be a whole number of {lo}-{hi}")
        side = self.encoder_long_side
        if isinstance(side, bool) or not isinstance(side, int) or not (side == 0 or 32 <= side <= 4096):
            raise ValueError(f"encoder_long_side {side!r} must be 0 (off) or a whole number of 32-4096")
        for key in ("in_kernel", "out_kernel"):
            if getattr(self, key) % 2 == 0:
                raise ValueError(f"{key} must be odd")
        if self.residual not in ("full", "separable"):
            raise ValueError(f"residual {self.residual!r} must be 'full' or 'separable'")
        layers = self.encoder_layers
        if not isinstance(layers, (list, tuple)) or not 1 <= len(layers) <= 32 or not all(
                isinstance(v, str) and 0 < len(v) < 100 for v in layers):
            raise ValueError("encoder_layers must be 1-32 layer names")
        self.encoder_layers = tuple(layers)
        enc = self.encoder_channels
        if not isinstance(enc, (list, tuple)) or len(enc) != len(layers) or not all(
                isinstance(c, int) and not isinstance(c, bool) and 1 <= c <= 8192 for c in enc):
            raise ValueError("encoder_channels must be one channel count (1-8192) per encoder layer")
        self.encoder_channels = tuple(enc)
        if not isinstance(self.backbone, str) or not 0 < len(self.backbone) < 100:
            raise ValueError(f"backbone {self.backbone!r} is not a backbone name")
        return self

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "ArbitraryConfig":
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("the architecture is not a JSON object")
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown architecture field {sorted(unknown)[0]!r}")
        return cls(**data).check()

    @property
    def stride(self) -> int:
        return self.space_to_depth * 2 ** (len(self.channels) - 1)


# ---------------------------------------------------------------------------- transformer


def conditional_instance_norm(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor,
                              eps: float = 1e-5) -> torch.Tensor:
    """Instance norm of N×C×H×W ``x`` with per-image scale and shift (``gamma``, ``beta``: N×C).

    Channels-last input is reduced on its N×(H·W)×C view (PyTorch's instance norm converts it to
    channels-first and back, measured 4-10× slower on the CPU; see network.py); the affine step
    is one multiply-add with the statistics folded in.
    """
    n, c, h, w = x.shape
    if n == 1:
        # one image: instance norm is batch norm over the batch of one, whose CPU kernel reads
        # channels-last maps in one pass (measured 4-14× faster than the general path below)
        return F.batch_norm(x, None, None, gamma[0].to(x.dtype), beta[0].to(x.dtype), training=True, eps=eps)
    channels_last = x.is_contiguous(memory_format=torch.channels_last) and c > 1
    v = x.permute(0, 2, 3, 1).reshape(n, h * w, c) if channels_last else x.reshape(n, c, h * w)
    dim = 1 if channels_last else 2
    # statistics in fp32 (sums of H·W values lose too much in half precision)
    var, mean = torch.var_mean(v.float(), dim=dim, keepdim=True, unbiased=False)
    g, b = gamma.float(), beta.float()
    g, b = (g.unsqueeze(1), b.unsqueeze(1)) if channels_last else (g.unsqueeze(2), b.unsqueeze(2))
    scale = g * torch.rsqrt(var + eps)
    shift = b - mean * scale
    out = torch.addcmul(shift.to(x.dtype), v, scale.to(x.dtype))
    return out.reshape(n, h, w, c).permute(0, 3, 1, 2) if channels_last else out.reshape(n, c, h, w)


class CondNorm(nn.Module):
    """A conditional instance norm: its gamma and beta are columns ``offset:offset+2C`` of the
    style parameters the transformer is called with."""

    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels
        self.offset = 0  # set by StyleTransformer once every norm is known

    def forward(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        c, o = self.channels, self.offset
        gamma, beta = params[:, o:o + c], params[:, o + c:o + 2 * c]
        if gamma.shape[0] != x.shape[0]:
            gamma, beta = gamma.expand(x.shape[0], c), beta.expand(x.shape[0], c)
        return conditional_instance_norm(x, gamma, beta)


def _conv(in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    """Reflection pad → conv (reflection keeps dark rims off the borders)."""
    pad = [ReflectionPad(kernel // 2)] if kernel > 1 else []
    return nn.Sequential(*pad, nn.Conv2d(in_ch, out_ch, kernel, stride, groups=groups))


class ConvNormReLU(nn.Module):
    """[upsample ×2 →] conv → conditional instance norm → ReLU."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, upsample: bool = False):
        super().__init__()
        self.upsample = upsample
        self.conv = _conv(in_ch, out_ch, kernel, stride)
        self.norm = CondNorm(out_ch)
        #: the upsample and convolution as one sub-pixel convolution (set by for_inference)
        self.subpixel: Optional[nn.Module] = None

    def forward(self, x, params):
        if self.subpixel is not None:
            x = self.subpixel(x)
        else:
            if self.upsample:
                x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = self.conv(x)
        return F.relu(self.norm(x, params), inplace=True)


class CondResidual(nn.Module):
    """x + norm(conv(relu(norm(conv(x))))), the convolutions full 3×3 or depthwise-separable."""

    def __init__(self, ch: int, kind: str):
        super().__init__()
        if kind == "full":
            self.conv1, self.conv2 = _conv(ch, ch, 3), _conv(ch, ch, 3)
        else:
            self.conv1 = nn.Sequential(_conv(ch, ch, 3, groups=ch), nn.Conv2d(ch, ch, 1))
            self.conv2 = nn.Sequential(_conv(ch, ch, 3, groups=ch), nn.Conv2d(ch, ch, 1))
        self.norm1, self.norm2 = CondNorm(ch), CondNorm(ch)

    def forward(self, x, params):
        y = F.relu(self.norm1(self.conv1(x), params), inplace=True)
        return x + self.norm2(self.conv2(y), params)


def padding_for(h: int, w: int, stride: int) -> Tuple[int, int]:
    """Rows and columns to add so that every stage divides evenly and the deepest maps are at
    least 2×2 (a reflection pad of one needs two pixels)."""
    def pad(n):
        return max(-n % stride, 2 * stride - n)
    return pad(h), pad(w)


class StyleTransformer(nn.Module):
    """Photo (N×3×H×W in [0, 1], any H, W ≥ 1) + style parameters (N×P or 1×P) → stylized photo.

    Layout (TransformerNet's): k×k conv in → stride-2 3×3 stages → residual blocks → (upsample
    ×2 → 3×3 conv [→ ``decoder_blocks`` residual blocks]) stages → k×k conv out → sigmoid; every
    norm conditional.
    """

    def __init__(self, config: ArbitraryConfig):
        super().__init__()
        ch = config.channels
        self.stride = config.stride
        self.fold = s = config.space_to_depth
        self.stem = ConvNormReLU(3 * s * s, ch[0], config.in_kernel)
        self.down = nn.ModuleList(ConvNormReLU(a, b, 3, stride=2) for a, b in zip(ch[:-1], ch[1:]))
        self.residuals = nn.ModuleList(CondResidual(ch[-1], config.residual) for _ in range(config.residual_blocks))
        self.up = nn.ModuleList(ConvNormReLU(b, a, 3, upsample=True) for a, b in zip(ch[-2::-1], ch[:0:-1]))
        fine = config.fine_channels
        self.output = _conv(ch[0], (3 + fine) * s * s, config.out_kernel)
        #: the full-resolution residual (``fine_channels``), zero at the start; None without it
        self.fine = _conv(fine, 3, 3) if fine else None
        if self.fine is not None:
            nn.init.zeros_(self.fine[-1].weight)
            nn.init.zeros_(self.fine[-1].bias)
        #: the decoder's residual blocks (``decoder_blocks``): round j holds one block per up stage
        #: (``up_residuals[j][i]`` runs after ``up[i]``, in round order). Registered after every
        #: other module with norms, so theirs keep their offsets and these come last in the style
        #: parameters; rounds (not stages) outermost so that growing k → k + 1 only appends
        #: (state-dict names and offsets of the first k rounds stay). Empty when 0 (no tensors).
        self.up_residuals = nn.ModuleList(
            nn.ModuleList(CondResidual(c, config.residual) for c in ch[-2::-1]) for _ in range(config.decoder_blocks))
        offset = 0
        for norm in self.norms():
            norm.offset = offset
            offset += 2 * norm.channels
        #: columns of the style parameters: gamma, beta of every norm in order
        self.param_count = offset

    def for_inference(self) -> "StyleTransformer":
        """A copy computing the same function faster, for inference only: each upsample →
        3×3 conv stage becomes an exact sub-pixel convolution (no ×2 maps are materialised;
        :class:`cvtools.style.network.SubPixelUpsampleConv`). Save the original, not this."""
        import copy

        from cvtools.style.network import SubPixelUpsampleConv

        net = copy.deepcopy(self).eval()
        for stage in net.up:
            stage.subpixel = SubPixelUpsampleConv(stage.conv[1])
        return net

    def norms(self) -> List[CondNorm]:
        return [m for m in self.modules() if isinstance(m, CondNorm)]

    def decoder_identity_norms(self) -> List[CondNorm]:
        """The second norm of every decoder block (``decoder_blocks``): gamma = beta = 0 there
        makes the block the identity."""
        return [block.norm2 for blocks in self.up_residuals for block in blocks]

    def forward(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        # sizes that are not multiples of the stride are padded (reflected where the image is
        # large enough) and cropped back: the output always has the input's size
        ph, pw = padding_for(h, w, self.stride)
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="reflect" if min(h, w) > max(ph, pw) else "replicate")
        params = params.to(x.device)
        y = self.stem(F.pixel_unshuffle(x, self.fold) if self.fold > 1 else x, params)
        for stage in self.down:
            y = stage(y, params)
        for block in self.residuals:
            y = block(y, params)
        for i, stage in enumerate(self.up):
            y = stage(y, params)
            for blocks in self.up_residuals:
                y = blocks[i](y, params)
        y = self.to_rgb(y)
        return y[..., :h, :w] if (ph or pw) else y

    def to_rgb(self, y: torch.Tensor) -> torch.Tensor:
        """The last stage's features → the picture: the output convolution, the pixel unfold, the
        full-resolution residual (``fine_channels``) and the sigmoid."""
        y = self.output(y)
        if self.fold > 1:
            y = F.pixel_shuffle(y, self.fold)
        if self.fine is not None:
            y = y[:, :3] + self.fine(F.relu(y[:, 3:]))
        # a sigmoid, not a clamp: saturated colours still get gradients in training
        return torch.sigmoid(y)


# ---------------------------------------------------------------------------- style encoder


def channel_statistics(features: torch.Tensor) -> torch.Tensor:
    """N×C×H×W → N×2C: each channel's mean and standard deviation (fp32), the summary of a
    texture that instance-norm style networks act on (Huang & Belongie's AdaIN uses the same)."""
    n, c, h, w = features.shape
    with torch.autocast(features.device.type, enabled=False):
        if features.is_contiguous(memory_format=torch.channels_last) and c > 1:
            # down the contiguous columns of the N×(H·W)×C view: no channels-first copy
            v = features.permute(0, 2, 3, 1).reshape(n, h * w, c).float()
            var, mean = torch.var_mean(v, dim=1, unbiased=False)
        else:
            var, mean = torch.var_mean(features.float(), dim=(2, 3), unbiased=False)
        return torch.cat([mean, (var + 1e-6).sqrt()], dim=1)


class StyleEncoder(nn.Module):
    """Backbone statistics of a painting (means and standard deviations of ``encoder_layers``)
    → a 2-layer MLP → the embedding. The backbone itself is not part of this module."""

    def __init__(self, config: ArbitraryConfig):
        super().__init__()
        self.layers = list(config.encoder_layers)
        features = 2 * sum(config.encoder_channels)
        self.mlp = nn.Sequential(nn.Linear(features, config.encoder_hidden), nn.ReLU(inplace=True),
                                 nn.Linear(config.encoder_hidden, config.embedding_dim))

    def forward(self, feats: Dict[str, torch.Tensor]) -> torch.Tensor:
        stats = torch.cat([channel_statistics(feats[k]) for k in self.layers], dim=1)
        with torch.autocast(stats.device.type, enabled=False):
            return self.mlp(stats)


class ArbitraryStyleNet(nn.Module):
    """The trainable parts: style encoder MLP, the linear heads (embedding → every norm's gamma
    and beta) and the conditional transformer. What the weights file holds."""

    def __init__(self, config: ArbitraryConfig):
        super().__init__()
        self.config = config
        self.encoder = StyleEncoder(config)
        self.transformer = StyleTransformer(config)
        self.heads = nn.Linear(config.embedding_dim, self.transformer.param_count)
        with torch.no_grad():
            # at the start every norm is a plain instance norm (gamma 1, beta 0) and the
            # embedding nudges it: small head weights keep early training stable
            self.heads.weight.mul_(0.1)
            self.heads.bias.zero_()
            for norm in self.transformer.norms():
                self.heads.bias[norm.offset:norm.offset + norm.channels] = 1.0
            # the decoder's blocks (``decoder_blocks``) start as the identity: their second
            # norm's gamma and beta are 0 for every embedding (weight rows and bias 0), so the
            # block adds exact zeros. A network grown from one without them
            # (train_arbitrary.load_overlapping) copies the old rows and keeps these. gamma still
            # gets gradients (the normalised features are not zero), so the blocks learn
            for norm in self.transformer.decoder_identity_norms():
                rows = slice(norm.offset, norm.offset + 2 * norm.channels)
                self.heads.weight[rows] = 0.0
                self.heads.bias[rows] = 0.0

    def style_params(self, embedding: torch.Tensor) -> torch.Tensor:
        """N×D (or D) embeddings → N×P gamma/beta of every norm (fp32, linear in the embedding)."""
        if embedding.dim() == 1:
            embedding = embedding.unsqueeze(0)
        with torch.autocast(embedding.device.type, enabled=False):
            return self.heads(embedding.float())

    def forward(self, photos: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        return self.transformer(photos, self.style_params(embedding))


def parameter_shapes(config: ArbitraryConfig) -> Dict[str, Tuple[int, ...]]:
    """The state dict's shapes for ``config``, computed on the meta device (no memory)."""
    with torch.device("meta"):
        net = ArbitraryStyleNet(config)
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


def count_flops(transformer: StyleTransformer, height: int, width: int) -> int:
    """2 × multiply-adds of the transformer's convolutions for one H×W photo (meta device:
    shapes only). Norms, pads and activations are left out (memory-bound, not arithmetic)."""
    from cvtools.style.network import count_flops as convolution_flops

    return convolution_flops(transformer, height, width, (1, transformer.param_count))


# ---------------------------------------------------------------------------- weights files


def save_weights(net: ArbitraryStyleNet, path, extra_metadata: Optional[Dict[str, str]] = None) -> None:
    """fp16 safetensors of the trainable parts (the backbone trunk is not saved: it is the
    embedded one), the architecture in the metadata; written atomically."""
    from safetensors.torch import save_file

    from cvtools.io.atomic import atomic_write

    state = {k: v.detach().to("cpu", torch.float16).contiguous() for k, v in net.state_dict().items()}
    meta = dict(extra_metadata or {}, format=WEIGHTS_FORMAT, config=net.config.to_json())
    atomic_write(path, lambda tmp: save_file(state, str(tmp), metadata=meta))


def read_config(path) -> ArbitraryConfig:
    """The architecture a weights file declares, its tensors' names and shapes checked against
    it, all before any tensor is read; one-line WeightsError otherwise."""
    from cvtools.errors import safe_path
    from cvtools.weights import read_safetensors_header

    header = read_safetensors_header(path)
    meta = header.get("__metadata__", {})
    if meta.get("format") != WEIGHTS_FORMAT:
        raise WeightsError(f"{safe_path(path)}: not an arbitrary-style network (no {WEIGHTS_FORMAT!r} metadata)")
    try:
        config = ArbitraryConfig.from_json(meta.get("config", ""))
    except (ValueError, TypeError, RecursionError) as exc:
        raise WeightsError(f"{safe_path(path)}: its architecture is not usable ({exc})") from None
    expected = parameter_shapes(config)
    found = {k: tuple(v["shape"]) for k, v in header.items() if k != "__metadata__"}
    for name in sorted(set(expected) | set(found)):
        if name not in found:
            raise WeightsError(f"{safe_path(path)}: tensor {name!r} is missing")
        if name not in expected:
            raise WeightsError(f"{safe_path(path)}: unexpected tensor {safe_path(repr(name))}")
        if found[name] != expected[name]:
            raise WeightsError(f"{safe_path(path)}: tensor {name!r} has shape {list(found[name])}, "
                               f"the architecture needs {list(expected[name])}")
    return config


def load_network(path, sha256: Optional[str] = None) -> ArbitraryStyleNet:
    """An :class:`ArbitraryStyleNet` (fp32, CPU, eval mode) from a weights file: shapes checked
    before loading, values checked finite, the SHA-256 checked when given."""
    from cvtools.weights import load_state_dict_file

    config = read_config(path)
    state = load_state_dict_file(path, expected_sha256=sha256)
    net = ArbitraryStyleNet(config)
    net.load_state_dict({k: v.float() for k, v in state.items()})
    return net.eval().requires_grad_(False)


# ---------------------------------------------------------------------------- inference


def _check_image(image: torch.Tensor, what: str) -> torch.Tensor:
    """A [0, 1] 3×H×W (or 1×3×H×W / N×3×H×W) float tensor, else a one-line UsageError."""
    if not isinstance(image, torch.Tensor) or image.dim() not in (3, 4) or image.shape[-3] != 3:
        shape = list(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise UsageError(f"{what} must be a 3×H×W RGB tensor in [0, 1], not {shape}", param=what)
    if not image.is_floating_point():
        raise UsageError(f"{what} must be a float tensor in [0, 1], not {image.dtype}", param=what)
    if min(image.shape[-2:]) < 1 or not bool(torch.isfinite(image).all()):
        raise UsageError(f"{what} is empty or has NaN or infinite values", param=what)
    return image if image.dim() == 4 else image.unsqueeze(0)


#: the encoder's input never gets a short side below this (a panorama at a 512-px long side
#: would otherwise reach the trunk's last block as a sliver a pixel high)
MIN_ENCODER_SHORT_SIDE = 64


#: the painting sizes a user may ask the encoder for (``--painting-size``)
PAINTING_SIZE_RANGE = (64, 4096)


def check_painting_size(long_side) -> Optional[int]:
    """None, or a whole number of pixels in :data:`PAINTING_SIZE_RANGE` (else a one-line UsageError)."""
    lo, hi = PAINTING_SIZE_RANGE
    if long_side is None:
        return None
    if isinstance(long_side, bool) or not isinstance(long_side, int) or not lo <= long_side <= hi:
        raise UsageError(f"the painting size must be a whole number of pixels from {lo} to {hi}, not {long_side!r}",
                         param="painting_size")
    return long_side


def encoder_shape(h: int, w: int, config: "ArbitraryConfig", long_side: Optional[int] = None) -> Tuple[int, int]:
    """The size a painting of h×w is resized to before the encoder: its long side ``long_side``
    when given, else ``config.encoder_long_side`` (short side at least MIN_ENCODER_SHORT_SIDE)
    when that is set, else its short side ``config.encoder_size``."""
    long_side = long_side or config.encoder_long_side
    if long_side:
        scale = max(long_side / max(h, w), MIN_ENCODER_SHORT_SIDE / min(h, w))
    else:
        scale = config.encoder_size / min(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale))


def encoder_input(image: torch.Tensor, config: "ArbitraryConfig", long_side: Optional[int] = None) -> torch.Tensor:
    """N×3×H×W resized (antialiased) to :func:`encoder_shape`, clamped to [0, 1]."""
    from cvtools.ops import resize

    return resize(image, encoder_shape(*image.shape[-2:], config, long_side)).clamp(0, 1)


class ArbitraryStylizer:
    """Load an arbitrary-style network once; encode paintings, blend them, stylize photos.

    weights: the safetensors file (train_arbitrary writes it; None: the bundled network, its
    SHA-256 pinned); sha256: its expected SHA-256 (checked when given). backbone: an already loaded style-encoder trunk (else the config's,
    with its embedded weights). Embeddings are 1-D float32 CPU tensors: keep, save or mix them.
    """

    def __init__(self, weights=None, device: str = "auto", sha256: Optional[str] = None, backbone=None,
                 precision: str = "fp32"):
        from cvtools.backbones import load_backbone
        from cvtools.device import resolve_device, resolve_precision

        #: style tokens at the end of the embedding (0 but for the shipped network)
        self.style_tokens = style_token_count(weights)
        if weights is None:
            weights, sha256 = bundled_weights()
        self.net = load_network(weights, sha256)
        self.config = self.net.config
        self.device = resolve_device(device)
        #: the transformer's dtype (the style encoder stays fp32: its statistics are small sums)
        self.dtype = resolve_precision(precision, self.device)
        if backbone is None:
            backbone = load_backbone(self.config.backbone, device=str(self.device), precision="fp32")
        self.backbone = backbone
        check_encoder_layers(backbone, self.config)
        self.net.to(self.device)
        cl = self.device.type in ("cpu", "cuda")  # convolutions run faster channels-last there
        self.memory_format = torch.channels_last if cl else torch.contiguous_format
        self.transformer = self.net.transformer.for_inference().to(self.dtype).to(memory_format=self.memory_format)

    def load_transformer(self, weights: Dict[str, torch.Tensor]) -> None:
        """Paint with these transformer weights from now on (a ``state_dict`` of this network's
        transformer, e.g. :meth:`cvtools.style.arbitrary_fit.StyleFitter.fit_network`'s): every
        name and shape must match. The encoder and heads stay, so embeddings mean what they did."""
        own = self.net.transformer.state_dict()
        bad = sorted(set(own) ^ set(weights)) or [k for k in own if tuple(weights[k].shape) != tuple(own[k].shape)]
        if bad:
            raise UsageError(f"transformer weights do not match this network ({', '.join(bad[:3])}"
                             f"{', ...' if len(bad) > 3 else ''})", param="weights")
        self.net.transformer.load_state_dict({k: v.float() for k, v in weights.items()})
        self.transformer = self.net.transformer.for_inference().to(self.dtype).to(memory_format=self.memory_format)

    @torch.inference_mode()
    def encode(self, painting: torch.Tensor, long_side: Optional[int] = None) -> torch.Tensor:
        """A painting (3×H×W in [0, 1], any size) → its embedding (1-D). ``long_side``: the size
        the painting is read at (None: the network's, the scale its training crops had); larger
        asks for finer strokes and dots, smaller for bolder ones."""
        x = encoder_input(_check_image(painting, "painting")[:1].float(), self.config, check_painting_size(long_side))
        feats = self.backbone.features(x.to(self.device), self.config.encoder_layers)
        return self.net.encoder(feats)[0].float().cpu()

    def blend(self, styles: Sequence[Tuple[torch.Tensor, float]]) -> torch.Tensor:
        """Weighted mean of embeddings, ``[(embedding, weight), ...]`` (weights ≥ 0, not all 0;
        normalised to sum to 1): the network then paints with the mixture of the styles."""
        styles = list(styles)
        if not styles:
            raise UsageError("styles is empty: give at least one (embedding, weight)", param="styles")
        weights = [float(w) for _, w in styles]
        if any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
            raise UsageError(f"styles weights must be finite, ≥ 0 and not all 0, not {weights}", param="styles")
        total = sum(weights)
        return sum(e.float().cpu() * (w / total) for (e, _), w in zip(styles, weights))

    def style_params(self, style: torch.Tensor) -> torch.Tensor:
        """1×P style parameters (every norm's gamma and beta, fp32, on the device) of ``style``:
        an embedding (``embedding_dim`` values, through the network's linear heads) or already
        parameters (``param_count`` values: :mod:`cvtools.style.arbitrary_fit`'s fitted ones). An
        embedding saved before the shipped network's style tokens still works (:func:`with_token_places`)."""
        d, p = self.config.embedding_dim, self.net.transformer.param_count
        style = with_token_places(style, d, self.style_tokens)
        if not isinstance(style, torch.Tensor) or style.dim() != 1 or style.shape[0] not in (d, p):
            shape = list(style.shape) if isinstance(style, torch.Tensor) else type(style).__name__
            raise UsageError(f"a style must be an embedding of {d} values or style parameters of {p}, "
                             f"not shape {shape}", param="embedding")
        if not bool(torch.isfinite(style).all()):
            raise UsageError("the style has NaN or infinite values", param="embedding")
        with torch.no_grad():
            style = style.detach().float().to(self.device)
            return style[None] if style.shape[0] == p and p != d else self.net.style_params(style)

    @torch.inference_mode()
    def stylize(self, photo: torch.Tensor, embedding: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
        """The photo (3×H×W or N×3×H×W in [0, 1]) painted in the style ``embedding`` (or fitted
        style parameters: :meth:`style_params`); same shape out, on the CPU. ``strength`` s in
        [0, 1] mixes in style space: (1 - s)·style(photo) + s·style (the heads are linear, so
        mixing parameters is mixing embeddings). One photo at a time (a CPU's memory); a batch
        in one pass on the device: :meth:`paint`."""
        x = _check_image(photo, "photo").float()
        y = torch.cat([self.paint(x[i:i + 1], embedding, strength) for i in range(x.shape[0])]).float().cpu()
        return y if photo.dim() == 4 else y[0]

    @torch.inference_mode()
    def paint(self, images: torch.Tensor, style: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
        """N×3×H×W in [0, 1] (any device; checked by the caller) painted in ``style`` (as
        :meth:`stylize`'s) in one pass → N×3×H×W on the device, in the transformer's dtype. With
        strength below 1 each image's own style is encoded too (one batched pass of the encoder)."""
        if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0 <= strength <= 1:
            raise UsageError(f"strength must be a number from 0 to 1, not {strength!r}", param="strength")
        params = self.style_params(style).expand(images.shape[0], -1)
        if strength < 1:
            own = self.net.style_params(self.encode_photos(images).to(self.device))
            params = (1 - strength) * own + strength * params
        x = images.to(self.device, non_blocking=True).to(self.dtype).contiguous(memory_format=self.memory_format)
        return self.transformer(x, params.to(self.dtype))

    @torch.inference_mode()
    def encode_photos(self, images: torch.Tensor) -> torch.Tensor:
        """Same-size images (N×3×H×W in [0, 1], any device) → their embeddings (N×D, fp32, on the
        device) in one pass: what :meth:`encode` gives each, for style-space strength."""
        x = encoder_input(images.to(self.device).float(), self.config)
        return self.net.encoder(self.backbone.features(x, self.config.encoder_layers)).float()

    def bytes_per_pixel(self) -> int:
        """Peak activation memory of :meth:`paint` per input pixel (an upper estimate): the widest
        maps are the first stage's c0 channels at 1/fold of the side, a few alive at once, plus
        the fp32 input and output images."""
        c0, fold = self.config.channels[0], self.net.transformer.fold
        elem = torch.finfo(self.dtype).bits // 8
        return int((4 * c0 / fold ** 2 + 4) * elem * 1.5 + 6 * 4)


class PaintingTeacher:
    """The any-painting network with one painting's style, as a function photos → pictures for
    train-style's distillation term (``teacher_weight`` in :mod:`cvtools.style.losses`): batches
    through the training form of the transformer (the inference form runs one image at a time),
    without gradients. weights/sha256: as :class:`ArbitraryStylizer`'s (None: the shipped one)."""

    def __init__(self, painting: torch.Tensor, device: str = "auto", weights=None, sha256: Optional[str] = None):
        from cvtools.weights import sha256_file

        if weights is None:
            weights, sha256 = bundled_weights()
        #: the weights' SHA-256 (the record of a style distilled from it names it)
        self.sha256 = sha256 or sha256_file(weights)
        self.stylizer = ArbitraryStylizer(weights, device=device, sha256=sha256)
        self.params = self.stylizer.style_params(self.stylizer.encode(painting))
        self.transformer = self.stylizer.net.transformer.eval().requires_grad_(False)

    @torch.no_grad()
    def __call__(self, photos: torch.Tensor) -> torch.Tensor:
        x = photos.to(self.stylizer.device)
        return self.transformer(x, self.params.expand(x.shape[0], -1))


def check_encoder_layers(backbone, config: ArbitraryConfig) -> None:
    """The backbone must have the encoder's layers with the channel counts the weights expect."""
    if backbone.name != config.backbone:
        raise WeightsError(f"the network's style encoder uses {config.backbone}, not {backbone.name}")
    channels = {info.name: info.channels for info in backbone.layers}
    for layer, c in zip(config.encoder_layers, config.encoder_channels):
        if channels.get(layer) != c:
            raise WeightsError(f"{config.backbone} layer {layer} has {channels.get(layer)} channels, "
                               f"the network's encoder expects {c}")
