"""Export the six bundled styles as the ONNX graphs that ship in the wheel (cvtools/style/bundled/onnx/):
the torch-free CPU path of `cvtools stylize` (cvtools.style.fast_cpu) runs them.

    python tools/export_bundled_onnx.py [--only NAME,NAME]

Each style: export_style (fp32, checked against PyTorch within 1e-4 on three photos), then the
weights fp16 holds exactly stored as fp16 (export.lossless_fp16), checked bit-identical to the
fp32 file in onnxruntime on the same photos; manifest.json pins each file's SHA-256 and the
weights' SHA-256 it was exported from. Re-run after retraining a bundled style.
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated style names (default: all bundled)")
    args = parser.parse_args(argv)

    import numpy as np
    import onnx

    from cvtools.export import _versions, cpu_session, default_check_images, export_style, lossless_fp16
    from cvtools.style.fast_cpu import MANIFEST, ONNX_DIR, _sha256
    from cvtools.style.records import bundled_records

    records = bundled_records()
    if args.only:
        wanted = set(args.only.split(","))
        records = [r for r in records if r.name in wanted]
    ONNX_DIR.mkdir(parents=True, exist_ok=True)
    try:
        manifest = json.loads(MANIFEST.read_text())
    except (OSError, ValueError):
        manifest = {}
    manifest.setdefault("styles", {})
    images = default_check_images()
    for record in records:
        with tempfile.TemporaryDirectory() as tmp:
            full = Path(tmp) / f"{record.name}.onnx"
            report = export_style(record, full, check=True, check_images=images)
            proto = lossless_fp16(onnx.load(str(full)))
            target = ONNX_DIR / f"{record.name}.onnx"
            onnx.save_model(proto, str(target))
            a, b = cpu_session(full), cpu_session(target)
            worst = 0.0
            for _, img in images:
                x = np.ascontiguousarray(img[None].numpy())
                worst = max(worst, float(np.abs(a.run(None, {"image": x})[0] - b.run(None, {"image": x})[0]).max()))
            if worst != 0.0:
                target.unlink()
                sys.exit(f"{record.name}: the fp16-stored graph differs from the fp32 export by {worst:.2e}")
            manifest["styles"][record.name] = {
                "file": target.name, "sha256": _sha256(target), "bytes": target.stat().st_size,
                "weights_sha256": record.weights["sha256"].lower(), "opset": report.opset,
                "check_max_abs_diff": max(c.max_abs_diff for c in report.checks), **_versions()}
            print(f"{record.name}: {target.stat().st_size / 1e6:.2f} MB, max |onnxruntime - PyTorch| "
                  f"{manifest['styles'][record.name]['check_max_abs_diff']:.1e}, fp16 storage identical")
    manifest["about"] = ("The bundled styles as ONNX graphs (tools/export_bundled_onnx.py): the torch-free CPU "
                         "path of cvtools stylize (cvtools/style/fast_cpu.py). fp32 arithmetic; weights fp16 "
                         "holds exactly stored as fp16.")
    MANIFEST.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
