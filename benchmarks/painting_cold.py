"""A painting stylization's first call against its second, in one process (issue 18).

    python benchmarks/painting_cold.py PAINTING.jpg PHOTO.jpg [--device cuda]

Prints the construction time (backbones loaded, painting targets computed) and each call's
seconds with the per-level losses; the gap between the calls is what a one-photo command pays
once (imports made on first use, kernels loaded, per-shape set-ups).
"""

import argparse
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("painting")
    ap.add_argument("photo")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--no-graphs", action="store_true", help="eager steps (the baseline of the CUDA-graph path)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    import torch

    from cvtools.io.decode import load_image, pil_to_tensor
    from cvtools.style.optimize import PaintingStylizer

    def sync():
        if torch.cuda.is_available() and args.device.startswith("cuda"):
            torch.cuda.synchronize()

    ps = PaintingStylizer(args.painting, device=args.device, **({"cuda_graphs": False} if args.no_graphs else {}))
    sync()
    print(f"construct {time.perf_counter() - t0:.2f} s, networks {[n[0].name for n in ps.networks]}", flush=True)
    photo = pil_to_tensor(load_image(args.photo).rgb)
    for k in range(2):
        sync()
        t = time.perf_counter()
        ps(photo)
        sync()
        levels = [(d["side"], d["steps"], round(d["total"], 3)) for d in ps.last_losses[-3:]]
        print(f"call {k}: {time.perf_counter() - t:.2f} s; (side, steps, loss) per level {levels}", flush=True)


if __name__ == "__main__":
    main()
