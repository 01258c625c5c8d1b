"""Fuzz the readers of style records, style weights and train-style checkpoints.

Any bytes must give a loaded object or a one-line CvtoolsError (WeightsError, UsageError);
anything else (another exception, a message over several lines, a Python warning printed on the
way, a hang over 10 s, memory over 3 GB) is a crash, saved under --crashes. Seeds are made in code: a tiny style (record +
safetensors) and a checkpoint of the same network with Adam state. Mutations: bit flips,
interesting bytes (quotes, brackets, digits, 0xff), truncation, duplicated chunks, huge numbers
spliced into JSON and into safetensors headers.

    python tools/fuzz_style_files.py --seconds 60 --record fuzz_style.json
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import signal
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path


def make_seeds(d: Path) -> dict:
    import torch

    from cvtools.style.network import TransformerNet
    from cvtools.style.records import StyleRecord, save_style_weights
    from cvtools.style.train import TrainConfig
    from cvtools.style.train_checkpoint import CHECKPOINT_FORMAT, content_digest

    torch.manual_seed(0)
    net = TransformerNet(0.125, 1)
    sha = save_style_weights(net, d / "s.safetensors", name="s")
    StyleRecord(name="s", title="T", weights={"file": "s.safetensors", "sha256": sha},
                network={"width": 0.125, "residual_blocks": 1}).save(d / "s.json")
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net(torch.rand(1, 3, 16, 16)).mean().backward()
    opt.step()
    obj = {"format": CHECKPOINT_FORMAT, "step": 1,
           "model": {k: v.detach() for k, v in net.state_dict().items()}, "optimizer": opt.state_dict(),
           "config": TrainConfig(style_image="a.jpg", photos="p", name="s", width=0.125,
                                 residual_blocks=1).to_json(),
           "history": "[]", "elapsed": 1.0, "identity": {}, "changes": []}
    obj["sha256"] = content_digest(obj)
    torch.save(obj, d / "s.ckpt")
    return {"record": (d / "s.json").read_bytes(), "weights": (d / "s.safetensors").read_bytes(),
            "checkpoint": (d / "s.ckpt").read_bytes()}


INTERESTING = [b"0", b"9", b"-", b".", b'"', b"[", b"]", b"{", b"}", b"\xff", b"\x00", b"/", b"e"]
BIG = [b"1e308", b"99999999999", b"-1", b"NaN", b"Infinity", b'"../../x"', b"[[[[[[[[", b"null", b"true"]


def mutate(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        kind = rng.random()
        if not b:
            break
        i = rng.randrange(len(b))
        if kind < 0.3:
            b[i] ^= 1 << rng.randrange(8)
        elif kind < 0.5:
            b[i:i + 1] = rng.choice(INTERESTING)
        elif kind < 0.6:
            del b[rng.randrange(len(b)):]
        elif kind < 0.7:
            j = min(len(b), i + rng.randint(1, 64))
            b[i:i] = b[i:j]
        else:  # a big or hostile value where a JSON value (or a header length) was
            j = min(len(b), i + rng.randint(1, 8))
            b[i:j] = rng.choice(BIG)
    return bytes(b)


def target(kind: str, path: Path):
    from cvtools.style.records import load_style_weights, read_record
    from cvtools.style.train_checkpoint import load_checkpoint

    if kind == "record":
        return read_record(path).load_network()
    if kind == "weights":
        return load_style_weights(path)
    return load_checkpoint(path)


class Hang(Exception):
    pass


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--record", help="write the run's summary (JSON) here")
    ap.add_argument("--crashes", default="fuzz_style_crashes", help="folder for crashing inputs")
    args = ap.parse_args(argv)

    from cvtools.errors import CvtoolsError

    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="fuzz_style_"))
    seeds = make_seeds(work)
    counts = {k: {"execs": 0, "loaded": 0, "refused": 0} for k in seeds}
    crashes = []
    signal.signal(signal.SIGALRM, lambda *a: (_ for _ in ()).throw(Hang()))
    start = time.perf_counter()
    while time.perf_counter() - start < args.seconds:
        kind = rng.choice(list(seeds))
        data = mutate(seeds[kind], rng)
        name = {"record": "s.json", "weights": "s.safetensors", "checkpoint": "s.ckpt"}[kind]
        case = work / "case"
        case.mkdir(exist_ok=True)
        # the record's weights file stays valid, so a mutated record reaches load_network
        (case / "s.safetensors").write_bytes(seeds["weights"])
        (case / name).write_bytes(data)
        counts[kind]["execs"] += 1
        signal.alarm(10)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                target(kind, case / name)
            counts[kind]["loaded"] += 1
            if caught:
                crashes.append((kind, data, f"warning: {str(caught[0].message)[:200]!r}"))
        except CvtoolsError as exc:
            counts[kind]["refused"] += 1
            if caught:
                crashes.append((kind, data, f"warning: {str(caught[0].message)[:200]!r}"))
            if "\n" in str(exc):
                crashes.append((kind, data, f"multi-line message: {str(exc)[:200]!r}"))
        except Exception as exc:  # a crash: anything but a one-line refusal
            crashes.append((kind, data, "".join(traceback.format_exception_only(type(exc), exc)).strip()[:300]))
        finally:
            signal.alarm(0)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
        if peak > 3 << 30:
            crashes.append((kind, data, f"memory peak {peak / 2 ** 30:.1f} GB"))
            break
    out = Path(args.crashes)
    for i, (kind, data, why) in enumerate(crashes):
        out.mkdir(exist_ok=True)
        (out / f"{i:03d}_{kind}.bin").write_bytes(data)
        print(f"crash {i} ({kind}): {why}", file=sys.stderr)
    summary = {"tool": "tools/fuzz_style_files.py", "engine": "mutate", "seconds": round(time.perf_counter() - start, 1),
               "seed": args.seed, "targets": counts, "crashes": len(crashes),
               "result": "no crashes" if not crashes else f"{len(crashes)} crashes in {out}/",
               "date": time.strftime("%Y-%m-%d")}
    text = json.dumps(summary, indent=2)
    print(text)
    if args.record:
        Path(args.record).write_text(text + "\n")
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
