"""BatchNorm folding leaves a model fully in eval mode (issue 20: the Identity stand-ins for the
folded BatchNorms were new modules, hence in training mode)."""

import torch
from torch import nn

from cvtools.backbones.fuse import fuse_conv_bn


def test_folded_model_is_all_eval_and_computes_the_same():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 1), nn.BatchNorm2d(2))
    with torch.no_grad():
        for bn in (model[1], model[4]):
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2)
    model.eval()
    x = torch.rand(2, 3, 9, 9)
    with torch.no_grad():
        before = model(x)
    assert fuse_conv_bn(model, x) == 2
    assert isinstance(model[1], nn.Identity) and not any(m.training for m in model.modules())
    with torch.no_grad():
        assert torch.allclose(model(x), before, atol=1e-5)


def test_loaded_backbone_is_fully_eval(lite0):
    assert lite0.fused and not any(m.training for m in lite0.model.modules())
