#!/usr/bin/env bash
# Session t: the bundled names' styles fitted to the new any-painting weights (gram2) on a GPU, the two
# fits side by side (both start from the paintings' encodings in the record tools/ship_arbitrary.py
# wrote): the embeddings (tools/fit_bundled_embeddings.py, 200 steps, written into the device copy's
# record) and the style parameters (--space params, for tools/bundled_style_tokens.py). fp32.
# Returns $OUT/embeddings.json, $OUT/params.json, $OUT/arbitrary.json (the record with the fit).
set -u
source .device/setup.sh
S=.device/shared
python3 tools/fit_bundled_embeddings.py --shared $S --device cuda --out $OUT/embeddings.json --write > /tmp/emb.log 2>&1 &
python3 tools/fit_bundled_embeddings.py --shared $S --device cuda --space params --out $OUT/params.json > /tmp/params.log 2>&1 &
wait
grep -v Warning /tmp/emb.log | tail -8; grep -v Warning /tmp/params.log | tail -7
cp cvtools/style/bundled/arbitrary.json $OUT/arbitrary.json
ls -la $OUT
