"""The shipped any-painting network without its six style tokens: G6 as it was trained (400-number
embedding). The tokens only added zero rows to the encoder's last layer and columns to the heads
(tools/bundled_style_tokens.py), so slicing them off gives back G6, which paints every painting
exactly as the shipped network does. Training continues from G6 (a run from the shipped file would
train the token places). Written where the device call can read it, so only one copy of the
weights travels.

    python3 benchmarks/plans/session_r/strip_tokens.py weights/arbitrary.safetensors /tmp/g6.safetensors
"""
import json
import sys

from safetensors import safe_open
from safetensors.torch import save_file

src, dst = sys.argv[1], sys.argv[2]
with safe_open(src, "pt") as f:
    meta = dict(f.metadata())
    state = {k: f.get_tensor(k) for k in f.keys()}
config = json.loads(meta["config"])
d = config["embedding_dim"] - 6
state["encoder.mlp.2.weight"] = state["encoder.mlp.2.weight"][:d].contiguous()
state["encoder.mlp.2.bias"] = state["encoder.mlp.2.bias"][:d].contiguous()
state["heads.weight"] = state["heads.weight"][:, :d].contiguous()
config["embedding_dim"] = d
meta["config"] = json.dumps(config)
save_file(state, dst, metadata=meta)
print(f"{dst}: embedding_dim {d}")
