"""Which lines of the stabilizer's ``finish`` dispatch how many operations a frame (issue 29): on a
GPU each non-view operation is at least one kernel launch, and `--stable`'s compute thread was
bound by launching them (BENCHMARKS "Where the rest of the cold --stable command went").

    python benchmarks/gpu_next/count_ops.py [--device cuda] [--size 1080x1920] [--clip object] [--cuda-forms]

A synthetic clip (cvtools.video.synthetic) through stabilizer_for's carry with the identity as the
network (the padded frame, plus noise so strokes differ frame to frame); one frame's ``finish``
counted under a dispatch mode, by the innermost cvtools function that called each operation.
``--cuda-forms``: the read's CUDA forms (stacked gather, Horner weights) on any device, to count a
GPU's operations on a CPU (2026-12-05: 524 operations with the CPU forms at 216×384, 222 with these).
"""
import argparse
import collections
import sys
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

from cvtools.video.stability import stabilizer_for  # noqa: E402
from cvtools.video.synthetic import make_clip  # noqa: E402

#: operations that make views or empty tensors: no kernel
NO_KERNEL = {"view", "reshape", "_unsafe_view", "as_strided", "select", "slice", "unsqueeze", "expand", "permute", "t",
             "transpose", "alias", "detach", "squeeze", "unbind", "split", "_reshape_alias", "lift_fresh", "empty",
             "empty_strided", "empty_like"}


class Count(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.by_caller = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.__name__.split(".")[0] not in NO_KERNEL:
            where = "?"
            for frame in reversed(traceback.extract_stack()[:-1]):
                if "/cvtools/" in frame.filename:
                    where = f"{frame.filename.split('/cvtools/')[1]}:{frame.name}"
                    break
            self.by_caller[where] += 1
        return func(*args, **(kwargs or {}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--size", default="216x384", help="HxW")
    ap.add_argument("--clip", default="object")
    ap.add_argument("--cuda-forms", action="store_true", help="the read as CUDA runs it, on any device")
    args = ap.parse_args()
    if args.cuda_forms:
        from cvtools.video import carry

        carry.spline_gather = lambda ring, slot, x, y, weights=None: carry._spline_gather_stacked(
            ring, slot, x, y, weights or carry._bspline_weights_horner)
        carry.bspline_weights = carry._bspline_weights_horner
    torch.set_grad_enabled(False)
    h, w = map(int, args.size.split("x"))
    clip = make_clip(args.clip, 10, (h, w))
    st = stabilizer_for(None, "carry")
    g = torch.Generator().manual_seed(0)
    for i, frame in enumerate(clip.frames):
        p = st.prepare(frame)
        out = p.float()[None] if p.dim() == 3 else p.float()
        out = (out + 0.03 * torch.randn(out.shape, generator=g)).clamp(0, 1).to(args.device)
        if i == 8:
            counter = Count()
            with counter:
                st.finish(out)
            print(f"{args.device} {h}x{w} {args.clip}: {sum(counter.by_caller.values())} operations in one finish()")
            for where, n in counter.by_caller.most_common(30):
                print(f"{n:5d}  {where}")
        else:
            st.finish(out)


if __name__ == "__main__":
    main()
