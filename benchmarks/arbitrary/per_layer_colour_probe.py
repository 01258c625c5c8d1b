"""The per-layer gap (per_layer_gap.py) with the outputs' RGB mean and covariance matched to the
painting's (a global colour transfer): how much of the any-painting network's distance, layer by
layer, is the palette and how much the texture (issue 28, 2026-12-05 night). CPU, fp32.

    python benchmarks/arbitrary/per_layer_colour_probe.py
"""
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tools")]
import torch

from cvtools.backbones import load_backbone
from cvtools.io.decode import load_image, pil_to_tensor
from cvtools.style.losses import gram_distances, style_target
from cvtools.style.painting import NetworkPaintingStylizer
from cvtools.style.records import resolve_style
from cvtools.style.stylize import Stylizer
from tools.arbitrary_quality import pick_photos
from tools.style_quality import INDEPENDENT_BACKBONE, INDEPENDENT_LAYERS, painting_for

torch.set_grad_enabled(False); torch.set_num_threads(2)
shared = Path(os.environ.get("CVTOOLS_SHARED") or ROOT.parent / "shared")
photos = pick_photos(shared)
judge = load_backbone(INDEPENDENT_BACKBONE, device='cpu', precision='fp32')
def colour_transfer(y, ref):
    # match the RGB mean and covariance of y to ref (Cholesky whitening/colouring)
    a = y.reshape(3, -1); b = ref.reshape(3, -1)
    ma, mb = a.mean(1, keepdim=True), b.mean(1, keepdim=True)
    ca = torch.cov(a) + 1e-5 * torch.eye(3); cb = torch.cov(b) + 1e-5 * torch.eye(3)
    la, lb = torch.linalg.cholesky(ca), torch.linalg.cholesky(cb)
    t = lb @ torch.linalg.inv(la)
    return (t @ (a - ma) + mb).reshape(y.shape).clamp(0, 1)
for name in ['grande_jatte', 'starry_night', 'composition_vii', 'great_wave']:
    rec = resolve_style(name)
    pimg = pil_to_tensor(painting_for(rec, shared))
    target = style_target(judge, pimg, INDEPENDENT_LAYERS)
    trained = Stylizer(rec, device='cpu', precision='fp32')
    anyp = NetworkPaintingStylizer(str(shared / 'styles' / f'{name}.jpg'), device='cpu', precision='fp32')
    acc = {k: {L: [] for L in INDEPENDENT_LAYERS} for k in ('trained', 'any', 'any+colour', 'trained+colour')}
    for p in photos:
        x = pil_to_tensor(load_image(p[1]).rgb)
        yt = trained(x, tile=None).clamp(0, 1); ya = anyp(x, tile=None).clamp(0, 1)
        for lab, y in (('trained', yt), ('any', ya), ('any+colour', colour_transfer(ya, pimg)), ('trained+colour', colour_transfer(yt, pimg))):
            d = gram_distances(judge.features(y[None], INDEPENDENT_LAYERS), target)
            for L in INDEPENDENT_LAYERS: acc[lab][L].append(float(d[L]))
    m = {lab: {L: statistics.mean(v) for L, v in acc[lab].items()} for lab in acc}
    print(name, ' | '.join(f"{L}: any {m['any'][L]/m['trained'][L]:.2f}, any+colour {m['any+colour'][L]/m['trained'][L]:.2f}, trained+colour {m['trained+colour'][L]/m['trained'][L]:.2f}" for L in INDEPENDENT_LAYERS), flush=True)
    tot = {lab: statistics.mean(statistics.mean(v) for v in acc[lab].values()) for lab in acc}
    print('   mean over layers ×trained: any %.2f, any+colour %.2f, trained+colour %.2f' % (tot['any']/tot['trained'], tot['any+colour']/tot['trained'], tot['trained+colour']/tot['trained']))
