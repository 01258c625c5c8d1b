"""Where the any-painting network's gap to the trained networks lies, layer by layer (issue 28,
2026-12-05 night): QUALITY's independent Lite2 yardstick (blocks 0, 3, 6, 10) on the 12 photos of
tools/arbitrary_quality.py (8 held-out BSDS + samples/), for the six bundled paintings: the trained
network, the any-painting network on the painting file, and the photo itself. CPU, fp32.

    python benchmarks/arbitrary/per_layer_gap.py     # writes /tmp/per_layer.json, prints the ratios
"""
import json
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
print(len(photos), 'photos')
judge = load_backbone(INDEPENDENT_BACKBONE, device='cpu', precision='fp32')
rows = []
for name in ['mona', 'scream', 'composition_vii', 'great_wave', 'starry_night', 'grande_jatte']:
    rec = resolve_style(name)
    target = style_target(judge, pil_to_tensor(painting_for(rec, shared)), INDEPENDENT_LAYERS)
    trained = Stylizer(rec, device='cpu', precision='fp32')
    anyp = NetworkPaintingStylizer(str(shared / 'styles' / f'{name}.jpg'), device='cpu', precision='fp32')
    for p in photos:
        x = pil_to_tensor(load_image(p[1]).rgb)
        for label, net in (('trained', trained), ('any', anyp), ('photo', None)):
            y = x if net is None else net(x, tile=None).clamp(0, 1)
            y = (y * 255).round() / 255
            d = gram_distances(judge.features(y[None], INDEPENDENT_LAYERS), target)
            rows.append(dict(style=name, net=label, **{k: float(v) for k, v in d.items()}))
    print(name, flush=True)
json.dump(rows, open('/tmp/per_layer.json', 'w'))
for name in dict.fromkeys(r['style'] for r in rows):
    line = [name]
    for L in INDEPENDENT_LAYERS:
        m = {lab: statistics.mean(r[L] for r in rows if r['style'] == name and r['net'] == lab) for lab in ('trained', 'any', 'photo')}
        line.append(f"{L}: any/trained {m['any']/m['trained']:.2f} (photo/trained {m['photo']/m['trained']:.1f})")
    print(' | '.join(line))
