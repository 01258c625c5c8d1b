#!/usr/bin/env python3
"""Give the bundled names their fitted style parameters inside the any-painting network (issue 28).

    python tools/bundled_style_tokens.py PARAMS.json [--write]

PARAMS.json: {name: [2,496 style parameters]} from ``tools/fit_bundled_embeddings.py --space params`` (each bundled
painting fitted in every conditional norm's gamma and beta, not in the embedding the linear heads read: on
QUALITY's Lite2 yardstick 1.077x the trained networks against 1.145x for fitted embeddings; benchmarks/arbitrary/PLAN.md,
session p). The network's interface stays an embedding, so blends, ``--strength``, the ONNX pair and the torch-free
path carry these parameters unchanged: the embedding grows by one **style token** per name. The encoder's last layer
gets a zero row per token (a painting's encoding is 0 there: paintings paint exactly as before), the heads a column per
token, column k = p_k - heads(e_k), e_k the name's stored embedding, and the name's stored embedding becomes
[e_k, one-hot k], so that heads([e_k, 1_k]) = p_k (up to the fp16 rounding of that column). The heads are affine and
blend weights sum to 1, so a blend or a strength mixes parameters exactly as it mixed embeddings.

Without --write: builds the network in /tmp and checks it. With --write: replaces the bundled weights and record
(history kept); then re-export the ONNX pair (tools/export_bundled_onnx.py --only arbitrary).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TOKENS_NOTE = (
    "the bundled names' embeddings end in style tokens (tools/bundled_style_tokens.py): each name's embedding is its "
    "fitted embedding followed by a one-hot token whose heads column carries the rest of its fitted style parameters "
    "(tools/fit_bundled_embeddings.py --space params: the painting, the network's training loss, 2,496 parameters), so "
    "the heads give exactly those parameters; a painting's encoding is 0 in the token places")


def build(params: dict):
    """(network, {name: embedding}) with one style token per name in ``params``."""
    import torch

    from cvtools.style.arbitrary import (
        ArbitraryConfig,
        ArbitraryStyleNet,
        bundled_style_embedding,
        bundled_weights,
        load_network,
    )

    path, sha = bundled_weights()
    old = load_network(path, sha)
    names = sorted(params)
    d, k = old.config.embedding_dim, len(names)
    config = ArbitraryConfig.from_json(old.config.to_json())
    config.embedding_dim = d + k
    net = ArbitraryStyleNet(config)
    state = {n: v.clone() for n, v in old.state_dict().items()}
    last = "encoder.mlp.2"
    state[f"{last}.weight"] = torch.cat([state[f"{last}.weight"], torch.zeros(k, state[f"{last}.weight"].shape[1])])
    state[f"{last}.bias"] = torch.cat([state[f"{last}.bias"], torch.zeros(k)])
    with torch.no_grad():
        columns = []
        for name in names:
            e = bundled_style_embedding(name).float()
            p = torch.tensor(params[name], dtype=torch.float32)
            if e.shape != (d,) or p.shape != (old.transformer.param_count,) or not bool(torch.isfinite(p).all()):
                raise SystemExit(f"{name}: an embedding of {d} and {old.transformer.param_count} finite parameters needed")
            # the column against the heads as they are stored (fp16 values): only its own rounding is left
            columns.append(p - old.style_params(e)[0])
    state["heads.weight"] = torch.cat([state["heads.weight"], torch.stack(columns, dim=1)], dim=1)
    net.load_state_dict(state)
    embeddings = {}
    for i, name in enumerate(names):
        token = torch.zeros(k)
        token[i] = 1.0
        embeddings[name] = torch.cat([bundled_style_embedding(name).float(), token])
    return net.eval().requires_grad_(False), embeddings


def check(path, embeddings: dict, params: dict) -> dict:
    """The saved network gives each name its parameters (fp16 rounding of the column), paints a painting's encoding
    as the shipped network does, and encodes paintings with zeros in the token places."""
    import torch

    from cvtools.style.arbitrary import bundled_weights, load_network

    new, old = load_network(path), load_network(*bundled_weights())
    worst = max(float((new.style_params(embeddings[n])[0] - torch.tensor(params[n])).abs().max()) for n in params)
    g = torch.Generator().manual_seed(0)
    stats = torch.randn(8, new.encoder.mlp[0].in_features, generator=g)
    e_new, e_old = new.encoder.mlp(stats), old.encoder.mlp(stats)
    d = old.config.embedding_dim
    same_encoding = float((e_new[:, :d] - e_old).abs().max())
    tokens_zero = float(e_new[:, d:].abs().max())
    same_params = float((new.style_params(e_new) - old.style_params(e_old)).abs().max())
    return {"parameters_max_error": worst, "encoding_max_change": same_encoding, "token_places_max": tokens_zero,
            "painting_parameters_max_change": same_params}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("params", help="{name: parameters} JSON (fit_bundled_embeddings.py --space params)")
    ap.add_argument("--write", action="store_true", help="replace the bundled weights and record")
    args = ap.parse_args(argv)

    import torch

    from cvtools.style.arbitrary import BUNDLED_RECORD, save_weights
    from cvtools.weights import sha256_file
    from tools.ship_arbitrary import HISTORY_KEYS

    torch.set_grad_enabled(False)
    if "style_tokens" in json.loads(BUNDLED_RECORD.read_text()):
        raise SystemExit("the bundled network has style tokens already: ship its weights again first "
                         "(tools/ship_arbitrary.py), fit, then add them")
    params = json.loads(Path(args.params).read_text())
    net, embeddings = build(params)
    out = Path("/tmp/arbitrary_tokens.safetensors")
    save_weights(net, out, {"record": "arbitrary.json"})
    report = check(out, embeddings, params)
    print(json.dumps(report))
    if report["encoding_max_change"] > 0 or report["token_places_max"] > 0 or report["painting_parameters_max_change"] > 1e-5:
        raise SystemExit("a painting's encoding or parameters changed: not written")
    if not args.write:
        return 0
    record = json.loads(BUNDLED_RECORD.read_text())
    history = list(record.get("history", []))
    history.append({"run": "the same weights before the bundled names' style tokens",
                    **{k: record.get(k) for k in HISTORY_KEYS}})
    target = BUNDLED_RECORD.parent / record["weights"]
    out.replace(target)
    record["sha256"] = sha256_file(target)
    record["history"] = history
    record.setdefault("architecture", {})["embedding_dim"] = net.config.embedding_dim
    k = len(embeddings)
    record["style_encodings"] = {n: list(v) + [0.0] * k for n, v in record["style_encodings"].items()}
    record["style_embeddings"] = {n: [round(float(v), 6) for v in e] for n, e in embeddings.items()}
    record["style_tokens"] = {"names": sorted(embeddings), "note": TOKENS_NOTE, "date": time.strftime("%Y-%m-%d"),
                              "check": report}
    BUNDLED_RECORD.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {target} ({record['sha256'][:12]}...) and {BUNDLED_RECORD}; re-export: "
          "tools/export_bundled_onnx.py --only arbitrary")
    return 0


if __name__ == "__main__":
    sys.exit(main())
