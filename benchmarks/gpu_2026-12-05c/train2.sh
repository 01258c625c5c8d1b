#!/usr/bin/env bash
# Second training call of 2026-12-05 evening (carry [".device"], as run.sh). Issue 29, great_wave's
# pale dark skin: the skin-only tone and colour term at 60 (run.sh) warmed and darkened the faces by
# eye but cost +35 % of Lite2 distance on QUALITY's 20 photos (30: +21 %); here the style weight is
# raised with it, so the ratio of the two on skin stays while the style pull elsewhere grows.
source .device/setup.sh
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))"
L1='{"efficientnet_lite1": ["blocks.0", "blocks.3", "blocks.6", "blocks.10"]}'
GW_OBJ() { echo '{"transform": "swag", "extra_backbones": '$L1', "stats_weight": 0.5, "tone_scale": 16, "tone_mask": "skin_colour", "tone_weight": '$1'}'; }
mkdir -p /tmp/e
train() {  # $1 style, $2 tag, then KEY=VALUE overrides of the style's recorded recipe
  local style=$1 tag=$2 args=() kv; shift 2
  for kv in "$@"; do args+=(--set "$style:$kv"); done
  python3 benchmarks/train_bundled_styles.py --shared $CVTOOLS_SHARED --out /tmp/m/$tag --export /tmp/e/$tag \
    --from-records --only $style --steps 500 --deadline 400 "${args[@]}" > /tmp/e/$tag.log 2>&1
}
train great_wave gw_sw32_skc60 style_weight=32 "objective=$(GW_OBJ 60)" &
train great_wave gw_sw48_skc90 style_weight=48 "objective=$(GW_OBJ 90)" &
train great_wave gw_sw32_skc90 style_weight=32 "objective=$(GW_OBJ 90)" &
train great_wave gw_sw24_skc60 style_weight=24 "objective=$(GW_OBJ 60)" &
wait
grep -h "steps in\|FAILED\|Error" /tmp/e/*/log.txt /tmp/e/*.log | cut -c1-200
tar cf $OUT/runs2.tar -C /tmp e
