"""Export the six bundled styles and the any-painting network as the ONNX graphs that ship in the
wheel (cvtools/style/bundled/onnx/): the torch-free CPU paths of `cvtools stylize`
(cvtools.style.fast_cpu, cvtools.style.fast_cpu_painting) run them.

    python tools/export_bundled_onnx.py [--only NAME,NAME]   (a NAME may be "arbitrary")

Each style: export_style (fp32, checked against PyTorch within 1e-4 on three photos), then the
weights fp16 holds exactly stored as fp16 (export.lossless_fp16), checked bit-identical to the
fp32 file in onnxruntime on the same photos; manifest.json pins each file's SHA-256 and the
weights' SHA-256 it was exported from. Re-run after retraining a bundled style.

The any-painting network: export_arbitrary (checked the same way); its transformer stored as the
styles are (bit-identical); its encoder, whose Lite0 trunk is not fp16, with every weight
rounded to fp16 (export.rounded_fp16): the embeddings of the check images used as paintings
and the pictures they paint are compared with the fp32 files' and must stay within
EMBEDDING_BOUND (relative to the largest value) and PICTURE_BOUND; the manifest records both.
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

#: the rounded encoder's largest embedding difference over the largest embedding value (measured
#: 4-8e-4 on the eight paintings of shared/styles: fp16 rounding is 2^-11 = 4.9e-4 per weight)
EMBEDDING_BOUND = 2e-3
#: ... and of the pictures it paints, in [0, 1] (measured under 0.6/255 there)
PICTURE_BOUND = 2 / 255


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated style names, 'arbitrary' for the any-painting network "
                                       "(default: all)")
    args = parser.parse_args(argv)

    import numpy as np
    import onnx

    from cvtools.export import _versions, cpu_session, default_check_images, export_style, lossless_fp16
    from cvtools.style.fast_cpu import MANIFEST, ONNX_DIR, _sha256
    from cvtools.style.records import bundled_records

    records = bundled_records()
    wanted = set(args.only.split(",")) if args.only else {r.name for r in records} | {"arbitrary"}
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
    if "arbitrary" in wanted:
        manifest["arbitrary"] = export_arbitrary_graphs(images)
    manifest["about"] = ("The bundled styles as ONNX graphs (tools/export_bundled_onnx.py): the torch-free CPU "
                         "path of cvtools stylize (cvtools/style/fast_cpu.py); 'arbitrary': the any-painting network's "
                         "encoder and transformer (cvtools/style/fast_cpu_painting.py). fp32 arithmetic; weights fp16 "
                         "holds exactly stored as fp16, the encoder's every weight rounded to fp16.")
    MANIFEST.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def export_arbitrary_graphs(images) -> dict:
    """The any-painting network's two shipped graphs (see the module); their manifest entry."""
    import numpy as np
    import onnx

    from cvtools.export import _versions, cpu_session, export_arbitrary, lossless_fp16, rounded_fp16
    from cvtools.style.arbitrary import bundled_weights, encoder_input, read_config
    from cvtools.style.fast_cpu import ONNX_DIR, _sha256

    weights, sha256 = bundled_weights()
    config = read_config(weights)
    entry = {"weights_sha256": sha256.lower(), **_versions()}
    with tempfile.TemporaryDirectory() as tmp:
        reports = export_arbitrary(Path(tmp) / "arbitrary.onnx", weights, sha256=sha256, overwrite=True, check=True,
                                   check_images=images)
        (enc_full, enc_report), (tr_full, tr_report) = [(Path(r.path), r) for r in reports]
        targets = {"encoder": ONNX_DIR / "arbitrary_encoder.onnx", "transformer": ONNX_DIR / "arbitrary_transformer.onnx"}
        onnx.save_model(rounded_fp16(onnx.load(str(enc_full))), str(targets["encoder"]))
        onnx.save_model(lossless_fp16(onnx.load(str(tr_full))), str(targets["transformer"]))
        enc_a, enc_b = cpu_session(enc_full), cpu_session(targets["encoder"])
        tr_a, tr_b = cpu_session(tr_full), cpu_session(targets["transformer"])
        embedding_diff = picture_diff = transformer_diff = 0.0
        for _, img in images:
            x = np.ascontiguousarray(encoder_input(img[None], config).numpy())
            a, b = enc_a.run(None, {"painting": x})[0], enc_b.run(None, {"painting": x})[0]
            embedding_diff = max(embedding_diff, float(np.abs(a - b).max() / np.abs(a).max()))
            photo = np.ascontiguousarray(img[None].numpy())
            ya = tr_a.run(None, {"image": photo, "embedding": a})[0]
            yb = tr_b.run(None, {"image": photo, "embedding": b})[0]
            picture_diff = max(picture_diff, float(np.abs(ya - yb).max()))
            transformer_diff = max(transformer_diff, float(np.abs(ya - tr_b.run(None, {"image": photo, "embedding": a})[0]).max()))
        if transformer_diff != 0.0 or embedding_diff > EMBEDDING_BOUND or picture_diff > PICTURE_BOUND:
            for target in targets.values():
                target.unlink()
            sys.exit(f"arbitrary: the stored graphs differ from the fp32 export (transformer {transformer_diff:.2e}, "
                     f"embeddings {embedding_diff:.2e} relative, pictures {picture_diff:.2e})")
        for part, report in (("encoder", enc_report), ("transformer", tr_report)):
            target = targets[part]
            entry[part] = {"file": target.name, "sha256": _sha256(target), "bytes": target.stat().st_size,
                           "opset": report.opset, "check_max_abs_diff": max(c.max_abs_diff for c in report.checks)}
        entry["encoder"]["storage"] = "every weight rounded to fp16"
        entry["encoder"]["rounding_embedding_rel_diff"] = embedding_diff
        entry["encoder"]["rounding_picture_max_abs_diff"] = picture_diff
        entry["transformer"]["storage"] = "weights fp16 holds exactly as fp16 (bit-identical)"
    print(f"arbitrary: encoder {entry['encoder']['bytes'] / 1e6:.2f} MB, transformer "
          f"{entry['transformer']['bytes'] / 1e6:.2f} MB; fp16 rounding moved embeddings {embedding_diff:.1e} "
          f"(relative), pictures {picture_diff * 255:.2f} levels")
    return entry


if __name__ == "__main__":
    main()
