"""``cvtools ui`` QA fixes (session t): Dream and Explain show their progress and can be
cancelled; an uploaded painting's row in the Stylize tab can be removed.

The server's side is tested through its ASGI interface (an :class:`~cvtools.ui.server.App` with
the real library on the CPU, no HTTP server); the page's through one server subprocess and one
headless Chromium page for the module (tests/conftest.py: ``ui_server``, ``ui_page``).
"""

import asyncio
import json
import threading
import time

from test_ui import _asgi_post, _wait, needs_browser, needs_extra
from test_ui_qa_s import _png


def _asgi_get(app, path):
    """A GET straight into the ASGI app, in its own thread and event loop (a browser fixture's
    loop may run in this one): (status, JSON)."""
    answer = {}

    async def receive():
        return {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        elif message["type"] == "http.response.body":
            answer["body"] = answer.get("body", b"") + message.get("body", b"")

    scope = {"type": "http", "http_version": "1.1", "method": "GET", "scheme": "http", "path": path,
             "raw_path": path.encode(), "query_string": b"", "root_path": "", "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 80), "headers": [(b"host", b"127.0.0.1")]}
    worker = threading.Thread(target=lambda: asyncio.run(app(scope, receive, send)))
    worker.start()
    worker.join()
    return answer["status"], json.loads(answer["body"])


def _running(app, kind, until, timeout=120.0):
    """The job /api/KIND/current names once ``until(job)`` holds (polled as the page polls)."""
    end, job = time.monotonic() + timeout, None
    while time.monotonic() < end:
        status, body = _asgi_get(app, f"/api/{kind}/current")
        assert status == 200, body
        job = body["job"]
        if job is not None and until(job):
            return job
        time.sleep(0.05)
    raise AssertionError(f"no {kind} job such that {until}: last {job}")


def _files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def _in_background(call):
    """Run ``call`` in a thread: (the thread, a list that gets its answer)."""
    answers = []
    worker = threading.Thread(target=lambda: answers.append(call()))
    worker.start()
    return worker, answers


@needs_extra
def test_a_dream_says_its_steps_and_cancel_stops_it_leaving_nothing(tmp_path):
    """QA: a Dream ran for minutes with no progress and no way to stop it. Now /api/dream/current
    names its job (steps done of all octaves' steps, the octave), a second Dream meanwhile is a
    409 saying one runs (a bad one still its own 400), and its cancel ends the run at the next
    step: the POST answers 409 "cancelled", and nothing of the request stays in the folder."""
    from cvtools.ui.server import App, Settings

    workdir = tmp_path / "ui"
    workdir.mkdir()
    app = App(Settings(device="cpu"), workdir=workdir)
    photo = [("photo", "cat.png", _png((128, 96)))]
    fields = {"octaves": "2", "steps": "200", "size": ""}  # minutes on a laptop CPU: cancelled long before
    worker, answers = _in_background(lambda: _asgi_post(app, "/api/dream", fields, photo))
    try:
        job = _running(app, "dream", lambda j: j["done"] >= 2)
        assert job["state"] == "running" and job["total"] == 2 * 200, job
        assert "octave" in job["stage"] and job["kind"] == "dream", job
        assert _asgi_get(app, f"/api/jobs/{job['id']}")[1]["done"] >= 2
        status, body = _asgi_post(app, "/api/dream", fields, photo)
        assert status == 409 and "a dream is already running" in body["error"], (status, body)
        status, body = _asgi_post(app, "/api/dream", dict(fields, octaves="99"), photo)
        assert status == 400 and "octaves" in body["error"], (status, body)
        assert _asgi_get(app, "/api/video/current")[1] == {"job": None}  # a dream is not a video
        t0 = time.monotonic()
        assert _asgi_post(app, f"/api/jobs/{job['id']}/cancel", {})[0] == 200
        worker.join(timeout=60)
        assert time.monotonic() - t0 < 15 and answers, "the dream did not stop at its next step"
        status, body = answers[0]
        assert status == 409 and body.get("cancelled") is True and "cancelled" in body["error"], answers
        assert _asgi_get(app, f"/api/jobs/{job['id']}")[1]["state"] == "cancelled"
        assert _asgi_get(app, "/api/dream/current")[1] == {"job": None}
        assert _files(workdir) == [], _files(workdir)  # no upload, no partial output
    finally:
        app.close()
        worker.join(timeout=60)


@needs_extra
def test_an_explain_says_its_methods_and_cancel_stops_it_within_a_method(tmp_path):
    """QA: a full Explain (minutes of occlusion, metrics, the sanity check on a CPU) showed
    nothing and could not be stopped. Now its job names the method under way, counts them, and a
    cancel stops it promptly even inside a method of many forward passes (occlusion)."""
    from cvtools.ui.server import App, Settings

    workdir = tmp_path / "ui"
    workdir.mkdir()
    app = App(Settings(device="cpu"), workdir=workdir)
    photo = [("photo", "cat.png", _png((160, 120)))]
    fields = {"methods": "gradcam,occlusion,smoothgrad", "metrics": "1", "sanity": "1"}
    worker, answers = _in_background(lambda: _asgi_post(app, "/api/explain", fields, photo))
    try:
        job = _running(app, "explain", lambda j: "Occlusion" in j["stage"])
        assert job["kind"] == "explain" and job["total"] >= 5 and 1 <= job["done"] < job["total"], job
        status, body = _asgi_post(app, "/api/explain", fields, photo)
        assert status == 409 and "an explain is already running" in body["error"], (status, body)
        t0 = time.monotonic()
        assert _asgi_post(app, f"/api/jobs/{job['id']}/cancel", {})[0] == 200
        worker.join(timeout=120)
        assert time.monotonic() - t0 < 10, "the explain did not stop within occlusion"
        status, body = answers[0]
        assert status == 409 and body.get("cancelled") is True, answers
        assert _asgi_get(app, "/api/explain/current")[1] == {"job": None}
        assert _files(workdir) == [], _files(workdir)
    finally:
        app.close()
        worker.join(timeout=120)


@needs_extra
def test_a_finished_explain_counts_every_step(tmp_path):
    """The job of an Explain that ran to its end says done, every step counted."""
    from cvtools.ui.server import App, Settings

    (tmp_path / "ui").mkdir()
    app = App(Settings(device="cpu"), workdir=tmp_path / "ui")
    try:
        status, body = _asgi_post(app, "/api/explain", {"methods": "gradcam,layercam"},
                                  [("photo", "cat.png", _png((64, 48)))])
        assert status == 200 and len(body["pictures"]) == 2, body
        jobs = [j.to_json() for j in app.jobs.values() if j.kind == "explain"]
        assert len(jobs) == 1 and jobs[0]["state"] == "done", jobs
        assert jobs[0]["done"] == jobs[0]["total"] >= 3, jobs
    finally:
        app.close()


# ---------------------------------------------------------------------------- in the browser

def _tab(page, name):
    page.click(f"#tabs button[data-tab='{name}']")


@needs_browser
def test_dream_shows_progress_and_cancel_returns_the_page_to_ready(ui_page, ui_server):
    """The Dream tab: a bar and "octave i of n, p %" while it runs, a Cancel that stops it (the
    server's job says cancelled), and the page ready again with one line, no result shown."""
    _tab(ui_page, "dream")
    assert ui_page.is_disabled("#dr-cancel") and not ui_page.is_visible("#dr-progress")
    ui_page.set_input_files("#dr-photo", {"name": "big.png", "mimeType": "image/png", "buffer": _png((160, 120))})
    ui_page.fill("#dr-octaves", "2")
    ui_page.fill("#dr-steps", "200")
    ui_page.select_option("#dr-size", "")
    ui_page.click("#dr-run")
    _wait(ui_page, "() => /octave \\d+ of \\d+, \\d+ %/.test(document.getElementById('dr-status').textContent)",
          timeout=120)
    assert ui_page.is_visible("#dr-progress") and ui_page.is_disabled("#dr-run") and ui_page.is_enabled("#dr-cancel")
    assert ui_page.get_by_role("progressbar", name="dream progress").count() == 1
    assert ui_page.evaluate("() => document.getElementById('dr-progress').max") == 400
    ui_page.get_by_role("button", name="Cancel dream").click()
    _wait(ui_page, "() => !document.getElementById('dr-run').disabled", timeout=30)
    assert ui_page.inner_text("#dr-status") == "dream cancelled; nothing was kept"
    assert "error" not in (ui_page.get_attribute("#dr-status", "class") or "")
    assert ui_page.is_disabled("#dr-cancel") and not ui_page.is_visible("#dr-progress")
    assert not ui_page.is_visible("#dr-result") and not ui_page.is_visible("#dr-download")
    workdir = ui_server.workdir
    assert not list(workdir.rglob("big*")), list(workdir.rglob("*"))


@needs_browser
def test_explain_shows_the_method_under_way_and_cancels(ui_page):
    """The Explain tab: the method under way and its count while it runs, and Cancel."""
    _tab(ui_page, "explain")
    ui_page.set_input_files("#ex-photo", {"name": "cat.png", "mimeType": "image/png", "buffer": _png((96, 64))})
    for box in ui_page.locator("#ex-methods input").all():
        box.set_checked(box.get_attribute("value") in ("gradcam", "occlusion"))
    ui_page.click("#ex-run")
    _wait(ui_page, "() => document.getElementById('ex-status').textContent.includes('Occlusion')", timeout=120)
    assert ui_page.is_visible("#ex-progress") and ui_page.is_enabled("#ex-cancel") and ui_page.is_disabled("#ex-run")
    ui_page.click("#ex-cancel")
    _wait(ui_page, "() => !document.getElementById('ex-run').disabled", timeout=30)
    assert ui_page.inner_text("#ex-status") == "explain cancelled; nothing was kept"
    assert ui_page.is_disabled("#ex-cancel") and not ui_page.is_visible("#ex-progress")
    assert ui_page.locator("#ex-results figure").count() == 0


@needs_browser
def test_an_uploaded_painting_can_be_removed_from_the_next_request(ui_page):
    """QA: a painting's row could be unticked but not removed. Each row has a Remove button named
    after its painting, reachable by keyboard; pressing it drops the row and its upload from the
    next Stylize request (the other painting keeps its place, "@0")."""
    _tab(ui_page, "stylize")
    ui_page.set_input_files("#st-painting", [
        {"name": "first.png", "mimeType": "image/png", "buffer": _png((32, 24))},
        {"name": "second.png", "mimeType": "image/png", "buffer": _png((24, 32))}])
    assert ui_page.locator("#st-paintings .style-row").count() == 2
    remove = ui_page.get_by_role("button", name="Remove first.png")
    assert remove.count() == 1
    remove.focus()
    ui_page.keyboard.press("Enter")
    assert ui_page.locator("#st-paintings .style-row").count() == 1
    assert ui_page.locator("#st-paintings .style-row span").all_inner_texts() == ["second.png"]
    assert ui_page.get_by_role("button", name="Remove first.png").count() == 0
    assert ui_page.evaluate("() => document.activeElement.getAttribute('aria-label')") == "Remove second.png"
    sent = []

    def answer(route):
        sent.append(route.request.post_data_buffer)
        route.fulfill(status=400, content_type="application/json", body=json.dumps({"error": "seen"}))

    ui_page.route("**/api/stylize", answer)
    try:
        ui_page.set_input_files("#st-photos", {"name": "p.png", "mimeType": "image/png", "buffer": _png((16, 16))})
        ui_page.click("#st-run")
        _wait(ui_page, "() => document.getElementById('st-status').textContent === 'seen'", timeout=10)
    finally:
        ui_page.unroute("**/api/stylize")
    body = sent[0]
    assert b'filename="second.png"' in body and b"first.png" not in body, body[:2000]
    styles = json.loads(body.split(b'name="styles"\r\n\r\n')[1].split(b"\r\n")[0])
    assert {"name": "@0", "weight": 1} in styles and len([s for s in styles if s["name"].startswith("@")]) == 1
    ui_page.get_by_role("button", name="Remove second.png").click()
    assert ui_page.locator("#st-paintings .style-row").count() == 0
