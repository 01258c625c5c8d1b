"""`--stable` on a slow sub-pixel pan against the table's (issue 29, 2026-12-05): at 0.5 px a frame
every other frame reads each carried pixel half a pixel off its stored output, where no
interpolation keeps the finest strokes. Prints stable / frame-by-frame and the Lite2 style change
for pans of one photo at (0.5, 0) and (1.37, 0.61) px a frame, 32 frames, 256×160.

    python benchmarks/video_stable_2026-12-05/slow_pan.py coffee composition_vii mona
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tools")]

import torch  # noqa: E402
import video_flicker as vf  # noqa: E402

from cvtools.style.stylize import Stylizer  # noqa: E402
from cvtools.video.synthetic import pan  # noqa: E402

if __name__ == "__main__":
    torch.set_grad_enabled(False)
    photo, styles = sys.argv[1], sys.argv[2:]
    yard = vf.StyleYardstick(ROOT.parent / "shared")
    for style in styles:
        net = Stylizer(style, device="cpu", precision="fp32")
        for velocity in ((0.5, 0.0), (1.37, 0.61)):
            row, _, _ = vf.compare(pan(photo, 32, (160, 256), velocity), net, 1.0, 0.85, yard, None, True, True)
            print(f"{photo} pan {velocity} px/frame, {style}: stable / fbf {row['ratio']:.2f}, "
                  f"style change {row['style_change']:+.1%}", flush=True)
