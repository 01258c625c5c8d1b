"""What the page costs over the library: ``python -m cvtools.ui.latency`` (needs the ui extra,
Playwright and a Chromium; run it on a quiet machine).

1. Stylizing a 1080p photo, in one run, alternating: the library call the page makes (the same
   stylizer object, warm) alone; the whole library path of one photo as ``cvtools stylize`` does
   it after start-up (``load_image`` → stylizer → ``save_image`` with the marker); and from the
   page in headless Chromium, from the click to the result decoded on screen (upload, server,
   download included). Medians of ``--repeats`` after one warm-up each.
2. Responsiveness during a video: while the Video tab stylizes a clip, the progress endpoint is
   polled every 100 ms and a tab switch timed in the page; then the run is cancelled.

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def _server(device: str):
    proc = subprocess.Popen([sys.executable, "-m", "cvtools", "ui", "--no-browser", "--device", device],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    match = re.search(r"(http://\S+)\s", line)
    if not match:
        proc.kill()
        raise SystemExit(f"the server did not start: {line!r} {proc.stderr.read()}")
    return proc, match.group(1).rstrip("/")


def _wait(page, js, timeout=600.0):
    end = time.monotonic() + timeout
    while not page.evaluate(js):
        if time.monotonic() > end:
            raise TimeoutError(js)
        page.wait_for_timeout(20)


def main(argv=None):
    # Over one screen: a measurement script's steps in the order they run (start the server, time each
    # request); read top to bottom.
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--style", default="mona")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--chromium", default=os.environ.get("CVTOOLS_CHROMIUM") or shutil.which("chromium"))
    parser.add_argument("--video-frames", type=int, default=90)
    args = parser.parse_args(argv)

    from PIL import Image
    from playwright.sync_api import sync_playwright

    from cvtools.io.decode import load_image
    from cvtools.ui.library import Library

    root = Path(tempfile.mkdtemp(prefix="cvtools-ui-latency-"))
    samples = Path(__file__).resolve().parents[1] / "data" / "samples"
    photo = root / "photo1080.jpg"
    with Image.open(samples / "coffee.jpg") as im:
        im.convert("RGB").resize((1920, 1080), Image.BICUBIC).save(photo, quality=92)
    lib = Library(device=args.device)
    stylizer = lib.stylizer([(args.style, 1.0)])
    proc, url = _server(args.device)
    call, whole, page_ms, server_call = [], [], [], []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(url + "/")
            _wait(page, "() => document.body.dataset.ready === '1'")
            page.select_option("#st-size", "")
            page.set_input_files("#st-photos", str(photo))
            for k in range(args.repeats + 1):
                rgb = load_image(photo).rgb
                t0 = time.perf_counter()
                stylizer(rgb, strength=1.0, as_uint8=True)
                t1 = time.perf_counter()
                copy = root / f"run{k}" / "photo1080.jpg"
                copy.parent.mkdir()
                shutil.copy(photo, copy)
                t2 = time.perf_counter()
                loaded = lib.load(copy)
                out = stylizer(loaded.rgb, strength=1.0, as_uint8=True)
                lib.save(copy, args.style, out, "stylize", {"--style": [args.style]})
                t3 = time.perf_counter()
                before = page.evaluate("() => document.body.dataset.stylized || ''")
                page.click("#st-run")
                _wait(page, f"() => (document.body.dataset.stylized || '') !== {json.dumps(before)}")
                last = page.evaluate("() => window.cvtoolsLast")
                if k:  # the first of each is the warm-up
                    call.append(t1 - t0)
                    whole.append(t3 - t2)
                    page_ms.append(last["pageMs"] / 1000)
                    server_call.append(last["libSeconds"])
            size = (last["width"], last["height"])

            # responsiveness while a video runs
            from cvtools.video.io import write_video
            from cvtools.video.synthetic import make_clip

            clip = write_video(root / "clip.mp4", list(make_clip("pan", frames=args.video_frames,
                                                                 size=(480, 854)).frames), fps=30)
            page.click("#tabs button[data-tab='video']")
            page.set_input_files("#vi-file", str(clip))
            page.select_option("#vi-size", "")
            page.click("#vi-run")
            _wait(page, "() => document.body.dataset.video === 'running'")
            polls, switches = [], []
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline and page.evaluate("() => document.body.dataset.video") == "running":
                t = time.perf_counter()
                with urllib.request.urlopen(url + "/api/info", timeout=30) as r:
                    r.read()
                polls.append(time.perf_counter() - t)
                t = time.perf_counter()
                page.click("#tabs button[data-tab='dream']")
                page.click("#tabs button[data-tab='video']")
                switches.append(time.perf_counter() - t)
                time.sleep(0.1)
            status_before_cancel = page.inner_text("#vi-status")
            page.click("#vi-cancel")
            _wait(page, "() => ['cancelled', 'done', 'failed'].includes(document.body.dataset.video)", 60)
            job = {"state": page.evaluate("() => document.body.dataset.video"),
                   "status_before_cancel": status_before_cancel, "status": page.inner_text("#vi-status")}
            browser.close()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)

    import platform

    import torch

    med = statistics.median
    print(json.dumps({
        "photo": "1920x1080 JPEG", "result_size": size, "style": args.style, "device": args.device,
        "stylizer": type(stylizer).__name__, "repeats": args.repeats,
        "library_call_s": round(med(call), 4), "library_photo_to_file_s": round(med(whole), 4),
        "page_click_to_shown_s": round(med(page_ms), 4), "network_in_server_s": round(med(server_call), 4),
        "ratio_page_to_call": round(med(page_ms) / med(call), 3),
        "ratio_page_to_photo_to_file": round(med(page_ms) / med(whole), 3),
        "all": {"call": call, "photo_to_file": whole, "page": page_ms},
        "during_video": {"polls": len(polls), "poll_median_s": round(med(polls), 4) if polls else None,
                         "poll_max_s": round(max(polls), 4) if polls else None,
                         "tab_switch_max_s": round(max(switches), 4) if switches else None, **job},
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "cpu_count": os.cpu_count(), "machine": platform.machine()},
    }, indent=1))


if __name__ == "__main__":
    main()
