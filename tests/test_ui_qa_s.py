"""``cvtools ui`` QA fixes (session s): hidden elements stay hidden, a server that stops is said
in one line, small photos are not enlarged, an undecodable photo gets no preview.

One server and one headless Chromium page for the module (tests/conftest.py: ``ui_server``,
``ui_page``); answers the page would get from a stopped server are made with Playwright's
request routing, so no test has to stop the shared server.
"""

import io
import json

import pytest
from test_ui import UI_EXTRA, _post, _start_server, _stop, _wait, needs_browser

UNREACHABLE = "the server stopped or cannot be reached"


def _png(size):
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, (200, 120, 40)).save(buf, format="PNG")
    return buf.getvalue()


def _tab(page, name):
    page.click(f"#tabs button[data-tab='{name}']")


@needs_browser
def test_hidden_elements_stay_hidden(ui_page):
    """QA: a.button and .compare set display, which beat the hidden attribute: a fresh page
    showed a broken "before" picture, a slider and Downloads that did nothing."""
    for tab, ids in [("stylize", ["st-compare", "st-slider", "st-download", "st-zip"]), ("video", ["vi-download"]),
                     ("dream", ["dr-download", "dr-result"]), ("explain", ["ex-download"])]:
        _tab(ui_page, tab)
        for id_ in ids:
            assert not ui_page.is_visible(f"#{id_}"), id_
    # a failed Dream after a good one leaves no Download of the old result
    answers = iter([{"status": 200, "content_type": "application/json", "body": json.dumps(
                        {"output": {"url": "/files/x", "name": "a_dream.png", "width": 4, "height": 4, "frames": 1},
                         "seconds": 0.1})},
                    {"status": 400, "content_type": "application/json", "body": json.dumps({"error": "bad photo"})}])
    ui_page.route("**/api/dream", lambda route: route.fulfill(**next(answers)))
    try:
        _tab(ui_page, "dream")
        ui_page.set_input_files("#dr-photo", {"name": "a.png", "mimeType": "image/png", "buffer": _png((4, 4))})
        ui_page.click("#dr-run")
        _wait(ui_page, "() => document.body.dataset.dreamed === 'a_dream.png'", timeout=10)
        assert ui_page.is_visible("#dr-download")
        ui_page.click("#dr-run")
        _wait(ui_page, "() => document.getElementById('dr-status').textContent === 'bad photo'", timeout=10)
        assert not ui_page.is_visible("#dr-download") and not ui_page.is_visible("#dr-result")
    finally:
        ui_page.unroute("**/api/dream")


@needs_browser
def test_a_server_that_stopped_is_said_in_one_line(ui_page):
    """QA: a failed fetch showed "Failed to fetch" (or uvicorn's "Internal Server Error"), and a
    video whose server stopped stayed "running" forever with its controls disabled."""
    _tab(ui_page, "dream")
    ui_page.set_input_files("#dr-photo", {"name": "a.png", "mimeType": "image/png", "buffer": _png((4, 4))})
    for answer in [lambda route: route.abort(),
                   lambda route: route.fulfill(status=500, content_type="text/plain", body="Internal Server Error")]:
        ui_page.route("**/api/dream", answer)
        ui_page.evaluate("() => { document.getElementById('dr-status').textContent = ''; }")
        ui_page.click("#dr-run")
        _wait(ui_page, "() => !document.getElementById('dr-run').disabled && "
                    "document.getElementById('dr-status').textContent !== ''", timeout=10)
        assert ui_page.inner_text("#dr-status") == UNREACHABLE
        ui_page.unroute("**/api/dream")

    running = {"id": "j1", "state": "running", "done": 0, "total": 10, "fps": 0.0, "error": "", "seconds": 0,
               "url": None}
    ui_page.route("**/api/video", lambda route: route.fulfill(status=200, content_type="application/json",
                                                           body=json.dumps(running)))
    ui_page.route("**/api/jobs/**", lambda route: route.abort())
    try:
        _tab(ui_page, "video")
        ui_page.set_input_files("#vi-file", {"name": "c.mp4", "mimeType": "video/mp4", "buffer": b"\x00" * 64})
        ui_page.click("#vi-run")
        _wait(ui_page, "() => document.body.dataset.video === 'lost'", timeout=10)
        assert UNREACHABLE in ui_page.inner_text("#vi-status")
        assert ui_page.is_enabled("#vi-run") and ui_page.is_disabled("#vi-cancel")
    finally:
        ui_page.unroute("**/api/video")
        ui_page.unroute("**/api/jobs/**")


@needs_browser
def test_an_undecodable_photo_gets_no_preview(ui_page):
    """QA: a file named .jpg that is no picture showed a broken-image icon as its preview."""
    _tab(ui_page, "stylize")
    ui_page.set_input_files("#st-photos", {"name": "bad.jpg", "mimeType": "image/jpeg", "buffer": b"not a jpeg" * 20})
    _wait(ui_page, "() => document.getElementById('st-status').textContent.includes('no preview')", timeout=10)
    assert not ui_page.is_visible("#st-compare") and not ui_page.is_visible("#st-before")


@pytest.mark.skipif(not UI_EXTRA, reason='the ui extra is not installed (pip install "cvtools[ui]")')
def test_small_photos_are_not_enlarged(ui_server, tmp_path):
    """QA: the page scaled a 96 px photo up to Size (the commands only shrink without --enlarge),
    and its marker's --size would not have reproduced the result."""
    from PIL import Image

    from cvtools.io.markers import read_marker

    for path, fields in [("/api/stylize", {"styles": json.dumps([{"name": "mona", "weight": 1}]), "size": "512"}),
                         ("/api/dream", {"octaves": "1", "steps": "0", "size": "256"})]:
        status, body = _post(ui_server.url + path, fields, [("photo", "small.png", _png((96, 64)))], {"X-Cvtools": "1"})
        assert status == 200, body
        out = json.loads(body)["output"]
        assert (out["width"], out["height"]) == (96, 64), (path, out)
        saved = tmp_path / out["name"]
        saved.write_bytes(_get_file(ui_server.url + out["url"]))
        with Image.open(saved) as im:
            assert im.size == (96, 64), path
        # what the command does with this --size and no --enlarge: the marker reproduces it
        options = read_marker(saved)["options"]
        assert options["--size"] in (256, 512) and not options.get("--enlarge"), options


def _get_file(url):
    import urllib.request

    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read()


@pytest.mark.skipif(not UI_EXTRA, reason='the ui extra is not installed (pip install "cvtools[ui]")')
def test_ctrl_c_during_a_dream_is_one_line(tmp_path):
    """QA: Ctrl-C while a Dream ran printed a 51-line traceback ending in CancelledError, and the
    page got uvicorn's bare "Internal Server Error"."""
    import threading
    import time

    proc, url, workdir = _start_server()
    answer = []
    fields = {"octaves": "6", "steps": "200", "size": ""}  # minutes on a CPU: still running at Ctrl-C
    photo = [("photo", "big.png", _png((640, 480)))]
    worker = threading.Thread(target=lambda: answer.append(_post(url + "api/dream", fields, photo,
                                                                 {"X-Cvtools": "1"})))
    try:
        worker.start()
        end = time.monotonic() + 30
        while not list(workdir.rglob("big.png")) and time.monotonic() < end:
            time.sleep(0.1)
        time.sleep(1.0)
    finally:
        assert _stop(proc) == 0
    worker.join(timeout=30)
    lines = [line for line in proc.stderr.read().splitlines() if line.strip()]
    assert len(lines) <= 1 and "Traceback" not in "\n".join(lines), lines
    assert all("cut short" in line for line in lines), lines
    status, body = answer[0]
    assert status == 503 and "server stopped" in json.loads(body)["error"], (status, body)


@needs_browser
def test_a_reloaded_page_picks_up_the_running_video(ui_page, ui_server):
    """QA: reloading during a video forgot the job: a new video was refused "already running"
    and Cancel stayed disabled, so nothing could stop it."""
    import urllib.request

    with urllib.request.urlopen(ui_server.url + "/api/video/current", timeout=30) as r:
        assert json.loads(r.read()) == {"job": None}  # nothing runs on the test server
    job = {"id": "j2", "state": "running", "done": 3, "total": 10, "fps": 2.0, "error": "", "seconds": 1.5,
           "url": None}
    cancelled = []

    def answer(route):
        if route.request.url.endswith("/cancel"):
            cancelled.append(True)
        state = dict(job, state="cancelled") if cancelled else job
        route.fulfill(status=200, content_type="application/json", body=json.dumps(state))

    ui_page.route("**/api/video/current", lambda route: route.fulfill(
        status=200, content_type="application/json", body=json.dumps({"job": job})))
    ui_page.route("**/api/jobs/**", answer)
    try:
        ui_page.reload()
        ui_page.wait_for_selector("body[data-ready='1']")
        _tab(ui_page, "video")
        _wait(ui_page, "() => document.getElementById('vi-status').textContent.includes('3 / 10')", timeout=10)
        assert ui_page.is_disabled("#vi-run") and ui_page.is_enabled("#vi-cancel")
        ui_page.click("#vi-cancel")
        _wait(ui_page, "() => document.body.dataset.video === 'cancelled'", timeout=10)
        assert cancelled and ui_page.is_enabled("#vi-run") and ui_page.is_disabled("#vi-cancel")
    finally:
        ui_page.unroute("**/api/video/current")
        ui_page.unroute("**/api/jobs/**")


@pytest.mark.skipif(not UI_EXTRA, reason='the ui extra is not installed (pip install "cvtools[ui]")')
def test_the_server_names_the_running_video(tmp_path):
    """/api/video/current: the running job (what a reloaded page follows), else null."""
    import asyncio
    import threading

    from cvtools.ui.server import App, Job, Settings

    app = App(Settings(), workdir=tmp_path / "ui")
    answers = []

    def get():  # its own thread and event loop: the browser fixture's loop runs in this one
        async def run():
            sent = []

            async def receive():
                return {"type": "http.disconnect"}

            async def send(message):
                sent.append(message)

            scope = {"type": "http", "http_version": "1.1", "method": "GET", "scheme": "http",
                     "path": "/api/video/current", "raw_path": b"/api/video/current", "query_string": b"",
                     "root_path": "", "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
                     "headers": [(b"host", b"127.0.0.1")]}
            await app(scope, receive, send)
            answers.append(json.loads(b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")))

        asyncio.run(run())

    try:
        app.jobs["old"] = Job("old", state="done")
        app.jobs["busy"] = Job("busy", done=4)
        for _ in range(2):
            worker = threading.Thread(target=get)
            worker.start()
            worker.join()
            app.jobs.pop("busy", None)
        assert answers[0]["job"]["id"] == "busy" and answers[0]["job"]["done"] == 4
        assert answers[1] == {"job": None}
    finally:
        app.close()


@needs_browser
def test_a_narrow_window_wraps_without_sideways_scrolling(ui_page, tmp_path):
    """QA: under ~720 px the controls' 300 px column and the picture's 360 px minimum made the
    page scroll sideways and the before/after overlay slip off its picture."""
    ui_page.set_viewport_size({"width": 400, "height": 800})
    try:
        _tab(ui_page, "stylize")
        ui_page.set_input_files("#st-photos", {"name": "wide.png", "mimeType": "image/png", "buffer": _png((900, 600))})
        _wait(ui_page, "() => document.getElementById('st-before').naturalWidth > 0", timeout=10)
        ui_page.screenshot(path=str(tmp_path / "narrow.png"), full_page=True)
        assert ui_page.evaluate("() => document.documentElement.scrollWidth") <= 400
        before = ui_page.locator("#st-before").bounding_box()
        after = ui_page.locator("#st-after-clip").bounding_box()
        assert all(abs(before[k] - after[k]) < 1.5 for k in ("x", "y", "width", "height")), (before, after)
        controls = ui_page.locator("#tab-stylize .controls").bounding_box()
        assert before["y"] >= controls["y"] + controls["height"]  # the picture under the controls
        assert before["x"] >= 0 and before["x"] + before["width"] <= 400
    finally:
        ui_page.set_viewport_size({"width": 1280, "height": 860})


@needs_browser
def test_tabs_sliders_and_status_lines_are_named_for_assistive_technology(ui_page):
    """QA: the tabs had no aria-selected/aria-controls nor arrow keys, the status lines were not
    announced, every weight slider was read as its style's name, the progress bar had no name."""
    ui_page.reload()
    ui_page.wait_for_selector("body[data-ready='1']")
    stylize = ui_page.get_by_role("tab", name="Stylize")
    assert stylize.get_attribute("aria-selected") == "true"
    assert stylize.get_attribute("aria-controls") == "tab-stylize"
    stylize.focus()
    ui_page.keyboard.press("ArrowRight")
    video = ui_page.get_by_role("tab", name="Video")
    assert video.get_attribute("aria-selected") == "true" and stylize.get_attribute("aria-selected") == "false"
    assert ui_page.evaluate("() => document.activeElement.dataset.tab") == "video" and ui_page.is_visible("#vi-run")
    assert ui_page.get_by_role("progressbar", name="video progress").count() == 1
    ui_page.keyboard.press("ArrowLeft")
    ui_page.keyboard.press("ArrowLeft")  # wraps round to the last tab
    assert ui_page.get_by_role("tab", name="Webcam").get_attribute("aria-selected") == "true"
    ui_page.keyboard.press("Home")
    assert ui_page.is_visible("#st-run")
    assert ui_page.get_by_role("slider", name="mona weight", exact=True).count() == 1
    for id_ in ("st-status", "vi-status", "dr-status", "ex-status", "wc-status"):
        assert ui_page.get_attribute(f"#{id_}", "aria-live") == "polite", id_


@pytest.mark.skipif(not UI_EXTRA, reason='the ui extra is not installed (pip install "cvtools[ui]")')
def test_favicon_and_too_many_styles_are_answered(ui_server):
    """QA: /favicon.ico was a 404 on every load; a ninth style was dropped without a word."""
    import urllib.request

    with urllib.request.urlopen(ui_server.url + "/", timeout=30) as r:
        assert 'rel="icon" href="data:' in r.read().decode()
    with urllib.request.urlopen(ui_server.url + "/favicon.ico", timeout=30) as r:
        assert r.status in (200, 204)
    nine = json.dumps([{"name": "mona", "weight": 1}] * 9)
    status, body = _post(ui_server.url + "/api/stylize", {"styles": nine}, [("photo", "a.png", _png((8, 8)))],
                         {"X-Cvtools": "1"})
    assert status == 400 and "at most 8 styles" in json.loads(body)["error"], (status, body)
