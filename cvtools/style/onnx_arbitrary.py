"""The any-painting network in onnxruntime (``stylize --engine onnxruntime`` with paintings).

>>> from cvtools.style.onnx_arbitrary import OnnxArbitraryStylizer
>>> st = OnnxArbitraryStylizer([("mona", 0.7), ("painting.jpg", 0.3)])   # encoded once, here
>>> out = st(photo, strength=0.5)                                        # 3×H×W in [0, 1] → 3×H×W

The same constructor and call as :class:`cvtools.style.painting.NetworkPaintingStylizer`, with
the two exported graphs of :func:`cvtools.export.export_arbitrary` (made once, checked against
PyTorch and kept in the cache: :func:`cvtools.export.cached_arbitrary_export`): paintings go
through the encoder graph (resized to the encoder's size by PyTorch's antialiased resize, as the
PyTorch network does: the resize is outside the graph), embeddings are blended here (weighted
means: the heads are linear, so this is blending the styles), ``strength`` s mixes the photo's
own embedding in style space, ``(1 - s)·own + s·style``, and the transformer graph paints.
Colour keeping is :func:`cvtools.style.stylize.finish_pixels`. CPU and fp32 only.
Needs ``pip install 'cvtools[onnx]'``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from cvtools.style.painting import _as_styles, style_stem

#: as NetworkPaintingStylizer: images with a shorter side below this are stylized at this size
#: and brought back (the transformer's padding and its 1/8 bottleneck need a few pixels)
MIN_SIDE = 32


class OnnxArbitraryStylizer:
    """Paintings, bundled styles and embeddings blended, painted by the exported any-painting
    network in onnxruntime. styles: [(source, weight)] (or sources alone, weight 1): a bundled
    style's name, a painting (path, PIL, 3×H×W tensor in [0, 1]) or a 1-D embedding tensor.
    device: auto or cpu; precision: auto or fp32; compile: False (onnxruntime optimises its
    graphs itself). weights/sha256: another network file (default: the bundled one, pinned).
    threads: onnxruntime's intra-op threads (None: its default). Attributes ``name``,
    ``embedding`` (the blend), ``styles``, ``last_tiles`` (always 0: the image goes whole),
    ``on_note``."""

    engine = "onnxruntime"

    def __init__(self, styles, device: str = "auto", precision: str = "auto", compile: bool = False,
                 on_note: Optional[Callable[[str], None]] = None, name: Optional[str] = None, weights=None,
                 sha256: Optional[str] = None, threads: Optional[int] = None, painting_size: Optional[int] = None):
        from cvtools.export import cached_arbitrary_export, check_onnxruntime_options, cpu_session, read_metadata
        from cvtools.style.arbitrary import ArbitraryConfig, check_painting_size, style_token_count
        from cvtools.style.records import normalized_weights
        from cvtools.timings import mark

        check_onnxruntime_options(device, precision, compile)
        styles = _as_styles(styles)
        blend_weights = normalized_weights([w for _, w in styles])
        #: the long side paintings are read at (None: the network's own)
        self.painting_size = check_painting_size(painting_size)
        mark("imports")
        self.on_note = on_note
        self.encoder_path, self.transformer_path = cached_arbitrary_export(weights, sha256, on_note=on_note)
        meta = read_metadata(self.transformer_path)
        self.config = ArbitraryConfig.from_json(meta["config"])
        import json

        #: style tokens at the end of the embedding (0 but for the shipped network)
        self.style_tokens = style_token_count(weights)
        self.bundled_embeddings = {k: torch.tensor(v, dtype=torch.float32)
                                   for k, v in json.loads(meta.get("style_embeddings") or "{}").items()}
        self.encoder = cpu_session(self.encoder_path, threads)
        self.transformer = cpu_session(self.transformer_path, threads)
        mark("model")
        self.styles = [(self.embedding_of(source), w) for (source, _), w in zip(styles, blend_weights)]
        self.embedding = sum(e * w for e, w in self.styles)
        self.name = name or "+".join(dict.fromkeys(style_stem(s) for s, _ in styles))
        self.last_tiles = 0

    # ------------------------------------------------------------------ styles
    def encode(self, painting: torch.Tensor, long_side: Optional[int] = None) -> torch.Tensor:
        """A painting (3×H×W in [0, 1]) → its embedding (1-D float32), through the encoder graph;
        ``long_side`` as :meth:`cvtools.style.arbitrary.ArbitraryStylizer.encode`'s."""
        from cvtools.style.arbitrary import check_painting_size, encoder_input

        x = encoder_input(painting[None].float(), self.config, check_painting_size(long_side))
        out = self.encoder.run(None, {"painting": np.ascontiguousarray(x.numpy())})[0]
        return torch.from_numpy(out[0].copy())

    def embedding_of(self, source) -> torch.Tensor:
        """A style's embedding: a bundled name's stored one, a painting's encoding, or the tensor."""
        from cvtools.style.arbitrary import checked_embedding, with_token_places

        source = with_token_places(source, self.config.embedding_dim, self.style_tokens)
        if isinstance(source, torch.Tensor) and source.dim() == 1:
            return checked_embedding(source, self.config.embedding_dim)
        if isinstance(source, str) and source in self.bundled_embeddings and not Path(source).is_file():
            return self.bundled_embeddings[source].clone()
        from cvtools.style.optimize import _painting_tensor

        return self.encode(_painting_tensor(source)[0], self.painting_size)

    # ------------------------------------------------------------------ photos
    def stylize(self, photo: torch.Tensor, embedding: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
        """3×H×W (H, W ≥ 16) in [0, 1] painted with ``embedding`` at ``strength`` (style space)."""
        styles = embedding.float()
        if strength < 1:
            styles = (1 - strength) * self.encode(photo) + strength * styles
        feed = {"image": np.ascontiguousarray(photo[None].float().numpy()),
                "embedding": np.ascontiguousarray(styles[None].numpy())}
        return torch.from_numpy(self.transformer.run(None, feed)[0][0])

    def __call__(self, image, strength: float = 1.0, preserve_color: bool = False, tile=None,
                 progress=None, as_uint8: bool = False) -> torch.Tensor:
        """As NetworkPaintingStylizer: one image (3×H×W float in [0, 1], or PIL) → 3×H×W on the
        CPU (uint8 with ``as_uint8``); ``tile`` and ``progress`` are accepted (it goes whole)."""
        from cvtools.io.decode import one_image, pil_to_tensor
        from cvtools.style.limits import checked_strength
        from cvtools.style.stylize import finish_pixels

        strength = checked_strength(strength)
        image = one_image(image)  # the range, dtype, shape and mode checks of every stylizer
        photo = image if torch.is_tensor(image) else pil_to_tensor(image)
        if strength == 0.0:
            return photo.clone()
        h, w = photo.shape[-2:]
        work = photo
        if min(h, w) < MIN_SIDE:
            f = MIN_SIDE / min(h, w)
            size = (max(MIN_SIDE, round(h * f)), max(MIN_SIDE, round(w * f)))
            work = torch.nn.functional.interpolate(photo[None], size=size, mode="bilinear", align_corners=False)[0]
        out = self.stylize(work, self.embedding, float(strength))
        if work is not photo:
            out = torch.nn.functional.interpolate(out[None], size=(h, w), mode="area")[0]
        result = finish_pixels(out, photo, 1.0, preserve_color)
        if as_uint8 and bool(torch.isfinite(result).all()):
            from cvtools.io.decode import to_uint8

            return to_uint8(result)
        return result
