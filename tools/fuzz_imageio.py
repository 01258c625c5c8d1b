#!/usr/bin/env python3
"""Fuzz the image loader: any bytes must give an image or an ImageError, nothing else.

    python tools/fuzz_imageio.py --seconds 300            # atheris (libFuzzer) when installed
    python tools/fuzz_imageio.py --seconds 60 --engine mutate   # a plain mutation loop

The target writes the fuzzer's bytes to a file (``load_image`` reads paths, as the commands
do) and calls ``read_marker`` (never raises) and ``load_image`` with a 4-megapixel limit. A crash is any exception other than
``ImageError`` (a traceback would reach the user), a hang past ``--timeout`` seconds, or memory
over ``--rss-mb``. Seeds: one small valid image per format the loader accepts, plus the
bad-input corpus of tests/badinputs.py. Crashing inputs go to ``--artifacts``; the run's
record (engine, seconds, executions, crashes) is printed as JSON and written to ``--record``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 4_000_000


def make_seeds(d: Path) -> int:
    """Small valid images in every accepted format, and the bad-input corpus."""
    sys.path.insert(0, str(ROOT / "tests"))
    from badinputs import make_corpus, photo

    d.mkdir(parents=True, exist_ok=True)
    base = photo(24, 16)
    n = 0
    variants = [
        ("png", "PNG", base, {}), ("rgba.png", "PNG", base.convert("RGBA"), {}),
        ("p.png", "PNG", base.quantize(8), {"transparency": 0}), ("la.png", "PNG", base.convert("LA"), {}),
        ("16.png", "PNG", base.convert("I;16"), {}), ("jpg", "JPEG", base, {"quality": 80}),
        ("prog.jpg", "JPEG", base, {"progressive": True}), ("cmyk.jpg", "JPEG", base.convert("CMYK"), {}),
        ("gif", "GIF", base, {}), ("bmp", "BMP", base, {}), ("tif", "TIFF", base, {}),
        ("lzw.tif", "TIFF", base, {"compression": "tiff_lzw"}), ("webp", "WEBP", base, {"quality": 60}),
        ("ppm", "PPM", base, {}), ("tga", "TGA", base, {}),
    ]
    for name, fmt, im, kw in variants:
        buf = io.BytesIO()
        try:
            im.save(buf, fmt, **kw)
        except (OSError, ValueError, KeyError):
            continue
        (d / f"seed_{name.replace('.', '_')}").write_bytes(buf.getvalue())
        n += 1
    # outputs as cvtools writes them: a provenance marker and an sRGB profile, PNG and JPEG
    from cvtools.io.atomic import save_image
    from cvtools.io.markers import Provenance
    from cvtools.io.naming import Outputs, output_path_for

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.png"
        base.save(src)
        run = Outputs(Provenance("stylize", {"--style": "mona", "--strength": 1.0}))
        for ext in (".png", ".jpg", ".webp"):
            out = save_image(output_path_for(src, None, "mona", ext=ext, outputs=run), base, outputs=run)
            (d / f"seed_marked_{ext[1:]}").write_bytes(out.read_bytes())
            n += 1
    with tempfile.TemporaryDirectory() as tmp:
        for case in make_corpus(tmp).values():
            if case.path.is_file() and case.path.stat().st_size < 200_000:
                (d / f"bad_{case.name}").write_bytes(case.path.read_bytes())
                n += 1
    return n


def _target_factory(scratch: Path):
    from cvtools.errors import ImageError
    from cvtools.io.decode import load_image
    from cvtools.io.markers import read_marker

    path = scratch / "input.img"

    def target(data: bytes) -> None:
        path.write_bytes(data)
        # the provenance marker reader (run on every file a folder run finds) never raises
        marker = read_marker(path)
        assert marker is None or (isinstance(marker["command"], str) and isinstance(marker["options"], dict))
        try:
            im = load_image(path, max_pixels=LIMIT)
        except ImageError:
            return
        # a loaded image must be consistent with what the loader promises
        assert im.rgb.mode == "RGB" and im.rgb.size[0] >= 1 and im.rgb.size[1] >= 1
        assert im.rgb.size[0] * im.rgb.size[1] <= LIMIT
        assert im.alpha is None or (im.alpha.mode == "L" and im.alpha.size == im.rgb.size)

    return target


# ----------------------------------------------------------------------------- engines


def run_atheris_worker(args) -> None:
    import atheris

    with atheris.instrument_imports():
        import PIL.BmpImagePlugin  # noqa: F401
        import PIL.GifImagePlugin  # noqa: F401
        import PIL.Image  # noqa: F401  (instrumented: Python-level plugin parsers)
        import PIL.ImageOps  # noqa: F401
        import PIL.JpegImagePlugin  # noqa: F401
        import PIL.PngImagePlugin  # noqa: F401
        import PIL.TiffImagePlugin  # noqa: F401

        import cvtools.io.decode  # noqa: F401
    scratch = Path(tempfile.mkdtemp(prefix="fuzz_scratch_", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    target = _target_factory(scratch)
    argv = [sys.argv[0], str(args.corpus), f"-max_total_time={args.seconds}", f"-timeout={args.timeout}",
            f"-rss_limit_mb={args.rss_mb}", f"-artifact_prefix={args.artifacts}/", "-max_len=65536",
            "-print_final_stats=1"]
    atheris.Setup(argv, target)
    atheris.Fuzz()


def run_mutation(args) -> dict:
    """A dumb but honest fallback: bit flips, byte sets, truncations, splices, chunk copies."""
    import resource
    import signal

    seeds = [p.read_bytes() for p in sorted(Path(args.corpus).iterdir()) if p.is_file() and p.stat().st_size]
    scratch = Path(tempfile.mkdtemp(prefix="fuzz_scratch_"))
    target = _target_factory(scratch)
    rng = random.Random(args.seed)
    resource.setrlimit(resource.RLIMIT_AS, (args.rss_mb << 20, args.rss_mb << 20))

    def alarm(signum, frame):
        raise TimeoutError("hang")

    signal.signal(signal.SIGALRM, alarm)
    crashes, execs, t0 = [], 0, time.monotonic()
    while time.monotonic() - t0 < args.seconds:
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 8)):
            op = rng.random()
            if not data:
                break
            i = rng.randrange(len(data))
            if op < 0.35:
                data[i] ^= 1 << rng.randrange(8)
            elif op < 0.6:
                data[i] = rng.choice([0, 0xFF, 0x7F, 0x80, rng.randrange(256)])
            elif op < 0.7:
                del data[rng.randrange(len(data)):]
            elif op < 0.8:
                other = rng.choice(seeds)
                j = rng.randrange(len(other))
                data[i:] = other[j:j + rng.randint(1, 256)] + data[i:]
            elif op < 0.9:
                j = rng.randrange(len(data))
                data[i:i] = data[j:j + rng.randint(1, 64)]
            else:  # large numbers into 4-byte fields (sizes, lengths)
                data[i:i + 4] = rng.choice([b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff", b"\x00\x00\x00\x00",
                                            b"\x00\x01\x00\x00"])
        signal.alarm(args.timeout)
        try:
            target(bytes(data))
        except BaseException as exc:  # noqa: BLE001 - everything but ImageError is a finding
            if isinstance(exc, KeyboardInterrupt):
                raise
            name = Path(args.artifacts) / f"crash-{len(crashes):03d}"
            name.write_bytes(bytes(data))
            crashes.append(f"{type(exc).__name__}: {str(exc)[:120]} -> {name}")
        finally:
            signal.alarm(0)
        execs += 1
    return {"execs": execs, "crashes": crashes, "seconds": round(time.monotonic() - t0, 1)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=120)
    ap.add_argument("--engine", choices=["auto", "atheris", "mutate"], default="auto")
    ap.add_argument("--timeout", type=int, default=10, help="seconds one input may take")
    ap.add_argument("--rss-mb", type=int, default=3072)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--corpus", type=Path, default=None, help="working corpus directory (default: a temp dir)")
    ap.add_argument("--artifacts", type=Path, default=Path(tempfile.gettempdir()) / "cvtools-fuzz-artifacts",
                    help="where crashing inputs are written")
    ap.add_argument("--record", type=Path, default=None, help="write the run record (JSON) here")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.worker:
        run_atheris_worker(args)
        return
    args.artifacts.mkdir(parents=True, exist_ok=True)
    if args.corpus is None:
        args.corpus = Path(tempfile.mkdtemp(prefix="fuzz_corpus_"))
    n_seeds = make_seeds(args.corpus)
    engine = args.engine
    if engine == "auto":
        try:
            import atheris  # noqa: F401

            engine = "atheris"
        except ImportError:
            engine = "mutate"
    import PIL

    record = {"tool": "tools/fuzz_imageio.py", "engine": engine, "target": "cvtools.io.decode.load_image",
              "pillow": PIL.__version__, "python": sys.version.split()[0], "seeds": n_seeds,
              "budget_seconds": args.seconds, "date": time.strftime("%Y-%m-%d")}
    if engine == "atheris":
        cmd = [sys.executable, __file__, "--worker", "--seconds", str(args.seconds), "--timeout", str(args.timeout),
               "--rss-mb", str(args.rss_mb), "--corpus", str(args.corpus), "--artifacts", str(args.artifacts)]
        t0 = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        log = proc.stderr + proc.stdout
        runs = re.findall(r"Done (\d+) runs in (\d+) second", log)
        cov = re.findall(r"cov: (\d+) ft: (\d+)", log)
        execs = re.findall(r"stat::number_of_executed_units: (\d+)", log)
        crash = re.findall(r"(Uncaught Python exception: .*|==\d+== ERROR: libFuzzer: .*)", log)
        record.update({
            "seconds": round(time.monotonic() - t0, 1),
            "execs": int(execs[-1]) if execs else (int(runs[-1][0]) if runs else None),
            "coverage_edges": int(cov[-1][0]) if cov else None, "features": int(cov[-1][1]) if cov else None,
            "corpus_files": len(list(Path(args.corpus).iterdir())),
            "exit_status": proc.returncode, "crashes": crash,
        })
        if proc.returncode != 0 and not crash:
            record["log_tail"] = log[-2000:]
        if crash:
            tail = log[log.find("Uncaught Python exception"):][:3000] if "Uncaught" in log else log[-3000:]
            record["crash_log"] = tail
    else:
        record.update(run_mutation(args))
        record["corpus_files"] = n_seeds
    record["result"] = "no crashes" if not record.get("crashes") else f"{len(record['crashes'])} crash(es)"
    text = json.dumps(record, indent=2)
    print(text)
    if args.record:
        args.record.parent.mkdir(parents=True, exist_ok=True)
        args.record.write_text(text + "\n")
    sys.exit(1 if record.get("crashes") else 0)


if __name__ == "__main__":
    main()
