"""Attention rollout (cvtools.visualize.rollout) against a float64 recomputation of its formula,
with the attention weights taken from torch's own MultiheadAttention (need_weights=True) rather
than recomputed from the projections as the method does.

Tolerance: the method works in float32 (softmax of 17 tokens, 2 products of 17×17 matrices);
each entry carries a few float32 roundings (2^-24 relative) of numbers below 1, so after the
min-max scaling the maps agree within ~1e-6; 1e-5 leaves room for the bilinear upsampling."""

import pytest
import torch
from torch import nn

from cvtools.backbones import load_user_model
from cvtools.errors import UsageError
from cvtools.visualize.attribution import make_method


def tiny_vit():
    from torchvision.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    vit = VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64,
                            num_classes=5).eval()
    nn.init.normal_(vit.heads.head.weight)
    return vit


def reference_rollout(vit, x64):
    """float64: the blocks run by hand, each attention's weights from MultiheadAttention itself."""
    vit = vit.double()
    tokens = vit._process_input(x64)
    tokens = torch.cat([vit.class_token.expand(len(x64), -1, -1), tokens], dim=1) + vit.encoder.pos_embedding
    rolled = None
    for block in vit.encoder.layers:
        y = block.ln_1(tokens)
        out, weights = block.self_attention(y, y, y, need_weights=True, average_attn_weights=True)
        tokens = tokens + out
        tokens = tokens + block.mlp(block.ln_2(tokens))
        a = 0.5 * weights + 0.5 * torch.eye(weights.shape[-1], dtype=torch.float64)
        rolled = a if rolled is None else a @ rolled
    row = rolled[:, 0, 1:].reshape(len(x64), 1, 4, 4)
    up = nn.functional.interpolate(row, size=x64.shape[-2:], mode="bilinear", align_corners=False)
    lo, hi = up.amin((1, 2, 3), keepdim=True), up.amax((1, 2, 3), keepdim=True)
    return ((up - lo) / (hi - lo))[:, 0]


def test_attention_rollout_equals_a_float64_recomputation():
    vit = tiny_vit()
    bb = load_user_model(vit, device="cpu", precision="fp32", fuse=False)
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    ours = make_method("attention-rollout", bb)(x)
    ref = reference_rollout(tiny_vit(), bb.normalize(x).double())
    assert ours.shape == (3, 32, 32)
    assert torch.allclose(ours.double(), ref, atol=1e-5), float((ours.double() - ref).abs().max())
    assert float(ours.std()) > 0.05  # a map, not a constant


def test_attention_rollout_is_refused_once_for_a_network_without_attention():
    bb = load_user_model(nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)),
                         device="cpu")
    with pytest.raises(UsageError, match="attention-rollout needs a vision transformer"):
        make_method("attention-rollout", bb)


def test_cli_rollout_on_a_cnn_is_one_line_for_the_batch(tmp_path, run_cli):
    from badinputs import photo

    photo(64, 48).save(tmp_path / "a.jpg")
    photo(64, 48, seed=3).save(tmp_path / "b.jpg")
    r = run_cli("visualize", "attention-rollout", tmp_path / "a.jpg", tmp_path / "b.jpg", "--weights", "random")
    assert r.exit_code == 1 and r.stderr.strip().count("\n") == 0, r.stderr  # one line for the batch
    assert "efficientnet_lite0 has none it can read" in r.stderr
    assert "all" in run_cli("visualize", "--help").stdout and "attention-rollout" in run_cli("visualize", "--help").stdout


def test_attention_rollout_is_batch_invariant_pure_and_clean():
    bb = load_user_model(tiny_vit(), device="cpu", precision="fp32")
    x = torch.rand(3, 3, 40, 40, generator=torch.Generator().manual_seed(2))
    original = x.clone()
    method = make_method("attention-rollout", bb)
    together = method(x)
    alone = torch.cat([method(x[i:i + 1]) for i in range(3)])
    assert torch.allclose(together, alone, atol=1e-5)
    assert torch.equal(x, original)
    assert all(not (m._forward_hooks or m._forward_pre_hooks) for m in bb.model.modules())
    def explode(module, inputs, output):
        raise RuntimeError("boom")

    handle = bb.model.net.heads.register_forward_hook(explode)
    try:
        with pytest.raises(RuntimeError, match="boom"):
            method(x)
    finally:
        handle.remove()
    assert all(not (m._forward_hooks or m._forward_pre_hooks) for m in bb.model.modules())  # also after an error
