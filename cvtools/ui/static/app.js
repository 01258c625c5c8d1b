// cvtools ui: plain JavaScript, no libraries, nothing loaded from elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);
let info = null;

// what a page says when the fetch itself fails: the browser's "Failed to fetch" names no cause
const UNREACHABLE = "the server stopped or cannot be reached";

async function api(path, body) {
  let response;
  try {
    response = await fetch(path, {method: "POST", body, headers: {"X-Cvtools": "1"}});
  } catch (err) {
    throw new Error(UNREACHABLE);
  }
  const type = response.headers.get("content-type") || "";
  if (!response.ok) {
    // our errors are JSON; a plain-text 5xx is uvicorn's own answer while the server stops
    if (!type.includes("json") && response.status >= 500) throw new Error(UNREACHABLE);
    const body = type.includes("json") ? await response.json() : {error: await response.text()};
    const err = new Error(body.error || response.statusText);
    err.cancelled = body.cancelled === true;  // a run that Cancel stopped: said, but not as a failure
    throw err;
  }
  return type.includes("json") ? response.json() : response.blob();
}

function status(id, text, error = false) {
  const el = $(id);
  el.textContent = text;
  el.classList.toggle("error", error);
}

function download(id, url, name) {
  const a = $(id);
  a.href = url + "?download=1";
  a.download = name;
  a.hidden = false;
}

function debounce(fn, ms) {
  let timer = null;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

// ---------------------------------------------------------------------------- tabs
const tabButtons = Array.from(document.querySelectorAll("#tabs button"));

function selectTab(button) {
  // aria-selected and a roving tabindex: a screen reader says which tab is open, Tab enters the
  // tab list once and the arrow keys move within it (the WAI-ARIA tabs pattern)
  for (const b of tabButtons) {
    b.classList.toggle("active", b === button);
    b.setAttribute("aria-selected", String(b === button));
    b.tabIndex = b === button ? 0 : -1;
  }
  for (const s of document.querySelectorAll(".tab")) s.classList.toggle("active", s.id === "tab-" + button.dataset.tab);
  if (button.dataset.tab !== "webcam") stopCamera();
}

for (const button of tabButtons) button.addEventListener("click", () => selectTab(button));
$("tabs").addEventListener("keydown", (e) => {
  const i = tabButtons.indexOf(document.activeElement);
  const moves = {ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabButtons.length - 1};
  if (i < 0 || !(e.key in moves)) return;
  e.preventDefault();
  const next = tabButtons[(moves[e.key] + tabButtons.length) % tabButtons.length];
  selectTab(next);
  next.focus();
});

// ---------------------------------------------------------------------------- Stylize
const st = {photos: [], urls: [], results: [], selected: 0, paintings: [], busy: false, again: false};

function styleRows() {
  const box = $("st-styles");
  for (const s of info.styles) {
    const row = document.createElement("label");
    row.className = "style-row";
    row.title = s.summary;
    row.innerHTML = `<input type="checkbox" data-style="${s.name}"><span>${s.name}</span>` +
      `<input type="range" min="0.05" max="1" step="0.05" value="1" data-weight="${s.name}">`;
    // each slider its own name: inside the row's label every one was read as the style's name
    row.querySelector("input[type=range]").setAttribute("aria-label", `${s.name} weight`);
    box.appendChild(row);
  }
  box.querySelector("input[type=checkbox]").checked = true;
  const mona = box.querySelector('input[data-style="mona"]');
  if (mona) { box.querySelector("input[type=checkbox]").checked = false; mona.checked = true; }
  for (const select of document.querySelectorAll(".style-select")) {
    for (const s of info.styles) select.add(new Option(s.name, s.name, false, s.name === "mona"));
  }
}

function chosenStyles() {
  const styles = [];
  for (const box of document.querySelectorAll("#st-styles input[type=checkbox]:checked")) {
    const name = box.dataset.style;
    styles.push({name, weight: parseFloat(document.querySelector(`input[data-weight="${name}"]`).value)});
  }
  st.paintings.forEach((p, i) => {
    if (p.row.querySelector("input[type=checkbox]").checked) {
      styles.push({name: "@" + i, weight: parseFloat(p.row.querySelector("input[type=range]").value)});
    }
  });
  return styles;
}

function setPhotos(files) {
  const known = new Set(info.image_extensions);
  st.photos = Array.from(files).filter((f) => known.has(f.name.slice(f.name.lastIndexOf(".")).toLowerCase()));
  st.urls.forEach((u) => URL.revokeObjectURL(u));
  st.urls = st.photos.map((f) => URL.createObjectURL(f));
  st.results = st.photos.map(() => null);
  st.selected = 0;
  drawGallery();
  showSelected();
  $("st-zip").hidden = true;
  status("st-status", st.photos.length ? `${st.photos.length} photo(s); press Stylize` : "no photos there", !st.photos.length);
}

$("st-photos").addEventListener("change", (e) => setPhotos(e.target.files));
$("st-folder").addEventListener("change", (e) => setPhotos(e.target.files));

$("st-zip").addEventListener("click", async () => {
  const form = new FormData();
  form.append("files", JSON.stringify(st.results.filter((r) => r).map((r) => r.url.split("/").pop())));
  try {
    const answer = await api("/api/zip", form);
    const a = document.createElement("a");
    a.href = answer.url + "?download=1";
    a.download = answer.name;
    a.click();
  } catch (err) {
    status("st-status", err.message, true);
  }
});

$("st-painting").addEventListener("change", (e) => {
  for (const file of e.target.files) {
    // a div, not a label round it all: the label names the checkbox only, the Remove button its own
    const row = document.createElement("div");
    row.className = "style-row";
    row.innerHTML = `<label><input type="checkbox" checked><span></span></label>` +
      `<input type="range" min="0.05" max="1" step="0.05" value="1"><button class="remove">✕</button>`;
    row.querySelector("span").textContent = file.name;
    row.querySelector("input[type=range]").setAttribute("aria-label", `${file.name} weight`);
    const remove = row.querySelector("button");
    remove.setAttribute("aria-label", `Remove ${file.name}`);
    remove.title = `Remove ${file.name}`;
    remove.addEventListener("click", () => removePainting(row));
    $("st-paintings").appendChild(row);
    st.paintings.push({file, row});
  }
  e.target.value = "";
  preview();
});

function removePainting(row) {
  // the row and its file go: the next request neither sends the painting nor names it ("@N"
  // counts the paintings left, in their order)
  const i = st.paintings.findIndex((p) => p.row === row);
  st.paintings.splice(i, 1);
  row.remove();
  // the keyboard's place stays in the list: the next painting's Remove, else the upload field
  const next = st.paintings[i] || st.paintings[i - 1];
  (next ? next.row.querySelector("button") : $("st-painting")).focus();
  preview();
}

function drawGallery() {
  const g = $("st-gallery");
  g.innerHTML = "";
  if (st.photos.length < 2) return;
  st.urls.forEach((url, i) => {
    const img = document.createElement("img");
    img.src = st.results[i] ? st.results[i].url : url;
    img.className = i === st.selected ? "selected" : "";
    img.addEventListener("click", () => { st.selected = i; drawGallery(); showSelected(); });
    g.appendChild(img);
  });
}

function showSelected() {
  const i = st.selected;
  if (!st.photos.length) { $("st-compare").hidden = true; return; }
  // a file with an image's extension that the browser cannot decode: no broken-image preview
  $("st-before").onerror = () => {
    $("st-compare").hidden = true;
    status("st-status", `no preview of ${st.photos[i].name}: the browser cannot show it`, true);
  };
  $("st-before").src = st.urls[i];
  const result = st.results[i];
  $("st-after").src = result ? result.url : st.urls[i];
  $("st-compare").hidden = false;
  if (result) download("st-download", result.url, result.name); else $("st-download").hidden = true;
}

async function stylizeOne(i) {
  const form = new FormData();
  form.append("photo", st.photos[i]);
  form.append("styles", JSON.stringify(chosenStyles()));
  for (const p of st.paintings) form.append("painting", p.file);
  form.append("strength", $("st-strength").value);
  form.append("preserve_color", $("st-preserve").checked ? "1" : "0");
  form.append("size", $("st-size").value);
  const t0 = performance.now();
  const answer = await api("/api/stylize", form);
  const out = answer.output;
  // the result is shown once the browser has it: that is what the user waits for
  await new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = resolve;
    img.onerror = () => reject(new Error("the result did not load"));
    img.src = out.url;
  });
  const ms = performance.now() - t0;
  st.results[i] = Object.assign({seconds: answer.seconds, pageMs: ms}, out);
  window.cvtoolsLast = {pageMs: ms, libSeconds: answer.seconds, serverSeconds: answer.server_seconds,
                        width: out.width, height: out.height};
  return st.results[i];
}

async function stylizeAll(onlySelected = false) {
  if (!st.photos.length) { status("st-status", "choose a photo first", true); return; }
  if (st.busy) { st.again = true; return; }
  st.busy = true;
  $("st-run").disabled = true;
  try {
    const which = onlySelected ? [st.selected] : st.photos.map((_, i) => i);
    for (const i of which) {
      status("st-status", `stylizing ${st.photos[i].name}…`);
      const r = await stylizeOne(i);
      if (i === st.selected) showSelected();
      status("st-status", `${r.width}×${r.height} in ${(r.pageMs / 1000).toFixed(2)} s ` +
        `(network ${r.seconds.toFixed(2)} s)`);
    }
    drawGallery();
    $("st-zip").hidden = st.results.filter((r) => r).length < 2;
    document.body.dataset.stylized = String(Date.now());
  } catch (err) {
    status("st-status", err.message, true);
  } finally {
    st.busy = false;
    $("st-run").disabled = false;
    if (st.again) { st.again = false; stylizeAll(true); }
  }
}

const preview = debounce(() => {
  if ($("st-live").checked && st.results[st.selected]) stylizeAll(true);
}, 250);

$("st-run").addEventListener("click", () => stylizeAll(false));
$("st-strength").addEventListener("input", (e) => { $("st-strength-out").textContent = e.target.value; });
for (const id of ["st-strength", "st-preserve", "st-size"]) $(id).addEventListener("change", preview);
$("st-styles").addEventListener("change", preview);
$("st-paintings").addEventListener("change", preview);
$("st-slider").addEventListener("input", (e) => {
  $("st-after-clip").style.clipPath = `inset(0 0 0 ${e.target.value}%)`;
});

// ---------------------------------------------------------------------------- Video
let job = null;

$("vi-run").addEventListener("click", async () => {
  const file = $("vi-file").files[0];
  if (!file) { status("vi-status", "choose a clip first", true); return; }
  const form = new FormData();
  form.append("video", file);
  form.append("style", $("vi-style").value);
  form.append("strength", $("vi-strength").value);
  form.append("stable", $("vi-stable").checked ? "1" : "0");
  form.append("size", $("vi-size").value);
  $("vi-run").disabled = true;
  $("vi-result").hidden = true;
  $("vi-download").hidden = true;
  status("vi-status", "uploading…");
  try {
    job = await api("/api/video", form);
    $("vi-cancel").disabled = false;
    poll();
  } catch (err) {
    status("vi-status", err.message, true);
    $("vi-run").disabled = false;
  }
});

// a video started before this page loaded (a reload, a second tab): follow it and let Cancel stop it
async function resumeVideo() {
  try {
    const running = (await (await fetch("/api/video/current")).json()).job;
    if (!running || job) return;
    job = running;
  } catch (err) {
    return;  // the page works without it; a new video then says that one runs
  }
  $("vi-run").disabled = true;
  $("vi-cancel").disabled = false;
  status("vi-status", "a video started earlier is running…");
  poll();
}

$("vi-cancel").addEventListener("click", async () => {
  if (job) await api(`/api/jobs/${job.id}/cancel`, null).catch(() => {});
});

async function poll() {
  try {
    const response = await fetch(`/api/jobs/${job.id}`);
    if (!response.ok) throw new Error(response.statusText);  // a restarted server knows no such job
    job = await response.json();
  } catch (err) {
    // the server is gone: say so once and give the controls back instead of "running" forever
    status("vi-status", `${UNREACHABLE}; the video did not finish`, true);
    document.body.dataset.video = "lost";
    $("vi-run").disabled = false;
    $("vi-cancel").disabled = true;
    return;
  }
  const total = job.total || 0;
  $("vi-progress").max = total || 1;
  $("vi-progress").value = job.done;
  const frames = total ? `${job.done} / ${total} frames` : `${job.done} frames`;
  status("vi-status", `${job.state}: ${frames}, ${job.fps.toFixed(1)} frames/s`, job.state === "failed");
  document.body.dataset.video = job.state;
  if (job.state === "running") { setTimeout(poll, 400); return; }
  $("vi-run").disabled = false;
  $("vi-cancel").disabled = true;
  if (job.state === "failed") status("vi-status", job.error, true);
  if (job.state === "done") {
    $("vi-result").src = job.url;
    $("vi-result").hidden = false;
    download("vi-download", job.url, "stylized.mp4");
  }
}

// ---------------------------------------------------------------------------- Dream and Explain runs
// Their request answers once the run is done (minutes on a laptop's CPU). Meanwhile the server's
// job for it (one of each kind at a time) is read from /api/KIND/current for the bar and the
// status line, and Cancel stops it there, between two of its steps. A page loaded while one runs
// picks it up as it picks up a video.
const runs = {
  dream: {prefix: "dr", doing: "dreaming", token: null, job: null, cancelling: false, sent: false},
  explain: {prefix: "ex", doing: "explaining", token: null, job: null, cancelling: false, sent: false},
};
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function runControls(kind, busy) {
  const r = runs[kind];
  $(r.prefix + "-run").disabled = busy;
  $(r.prefix + "-cancel").disabled = !busy;
  const bar = $(r.prefix + "-progress");
  bar.hidden = !busy;
  bar.removeAttribute("value");  // indeterminate until the server says how many steps
}

// a run of this page (poll: follow it through /api/KIND/current): its token ends the polling
function beginRun(kind, poll = true) {
  const r = runs[kind];
  const token = {};
  Object.assign(r, {token, job: null, cancelling: false, sent: false});
  runControls(kind, true);
  if (poll) pollRun(kind, token);
  return token;
}

function endRun(kind) {
  runs[kind].token = null;
  runControls(kind, false);
}

async function pollRun(kind, token) {
  const r = runs[kind];
  while (r.token === token) {
    try {
      const job = (await (await fetch(`/api/${kind}/current`)).json()).job;
      if (job && r.token === token) showRun(kind, job);
    } catch (err) {
      // the run's own request says what went wrong
    }
    await sleep(300);
  }
}

function showRun(kind, job) {
  const r = runs[kind];
  r.job = job;
  const bar = $(r.prefix + "-progress");
  if (job.total) { bar.max = job.total; bar.value = job.done; }
  if (r.cancelling) { cancelRun(kind); return; }  // Cancel pressed before the job was known
  const pct = job.total ? `, ${Math.floor(100 * job.done / job.total)} %` : "";
  status(r.prefix + "-status", `${r.doing}… ${job.stage || "starting"}${pct}`);
}

function cancelRun(kind) {
  const r = runs[kind];
  if (!r.token) return;
  r.cancelling = true;
  $(r.prefix + "-cancel").disabled = true;
  status(r.prefix + "-status", "cancelling…");
  if (r.job && !r.sent) {
    r.sent = true;
    api(`/api/jobs/${r.job.id}/cancel`, null).catch(() => {});
  }
}

for (const kind of Object.keys(runs)) $(runs[kind].prefix + "-cancel").addEventListener("click", () => cancelRun(kind));

// a dream or an explain started before this page loaded (a reload, a second tab): followed to its
// end with its Cancel, so that a new one is not refused with nothing to do about it
async function resumeRun(kind) {
  const r = runs[kind];
  let job = null;
  try {
    job = (await (await fetch(`/api/${kind}/current`)).json()).job;
  } catch (err) {
    return;
  }
  if (!job || r.token) return;
  const token = beginRun(kind, false);
  while (r.token === token && job.state === "running") {
    showRun(kind, job);
    await sleep(400);
    try {
      job = await (await fetch(`/api/jobs/${job.id}`)).json();
    } catch (err) {
      job = {state: "failed", error: UNREACHABLE};
    }
  }
  if (r.token !== token) return;
  endRun(kind);
  const ended = {done: `the ${kind} started earlier is done`, cancelled: `${kind} cancelled; nothing was kept`};
  status(r.prefix + "-status", ended[job.state] || job.error || job.state, !(job.state in ended));
  if (kind === "dream" && job.url) {
    $("dr-result").src = job.url;
    $("dr-result").hidden = false;
    download("dr-download", job.url, "");
  }
}

// ---------------------------------------------------------------------------- Dream
$("dr-run").addEventListener("click", async () => {
  const photo = $("dr-photo").files[0];
  if (!photo) { status("dr-status", "choose a photo first", true); return; }
  const form = new FormData();
  form.append("photo", photo);
  if ($("dr-guide").files[0]) form.append("guide", $("dr-guide").files[0]);
  for (const id of ["layer", "octaves", "steps", "size", "frames", "zoom"]) form.append(id, $("dr-" + id).value);
  // the last result goes while this one runs: a failed run must not leave its Download behind
  $("dr-result").hidden = true;
  $("dr-download").hidden = true;
  beginRun("dream");
  status("dr-status", "dreaming…");
  try {
    const answer = await api("/api/dream", form);
    $("dr-result").src = answer.output.url;
    $("dr-result").hidden = false;
    download("dr-download", answer.output.url, answer.output.name);
    const what = answer.output.frames > 1 ? `${answer.output.frames} frames, ` : "";
    status("dr-status", `${what}${answer.output.width}×${answer.output.height} in ${answer.seconds.toFixed(2)} s`);
    document.body.dataset.dreamed = answer.output.name;
  } catch (err) {
    status("dr-status", err.message, !err.cancelled);
  } finally {
    endRun("dream");
  }
});

// ---------------------------------------------------------------------------- Explain
function fillLayers(select, layers, defaultText) {
  select.innerHTML = "";
  select.add(new Option(defaultText, ""));
  for (const l of layers) select.add(new Option(l, l));
}

$("ex-model").addEventListener("change", () => { $("ex-own").hidden = $("ex-model").value !== "own"; });
$("ex-photo").addEventListener("change", () => {
  $("ex-classes").innerHTML = '<span class="muted">the top class; after a run, pick any of the top 5</span>';
});

async function explain(target = null) {
  if (runs.explain.token) return;  // a class picked while one runs: the server would refuse it
  const photo = $("ex-photo").files[0];
  if (!photo) { status("ex-status", "choose a photo first", true); return; }
  const methods = Array.from(document.querySelectorAll("#ex-methods input:checked")).map((b) => b.value);
  const form = new FormData();
  form.append("photo", photo);
  form.append("methods", methods.join(","));
  form.append("layer", $("ex-layer").value);
  if (target !== null) form.append("target", String(target));
  form.append("metrics", $("ex-metrics").checked ? "1" : "0");
  form.append("sanity", $("ex-sanity").checked ? "1" : "0");
  if ($("ex-model").value === "own") {
    if (!$("ex-model-file").files[0]) { status("ex-status", "choose the checkpoint", true); return; }
    form.append("model", $("ex-model-file").files[0]);
    form.append("architecture", $("ex-arch").value);
  }
  $("ex-download").hidden = true;  // the panel of the last run is not this run's
  beginRun("explain");
  status("ex-status", "explaining…");
  try {
    const a = await api("/api/explain", form);
    const grid = $("ex-results");
    grid.innerHTML = "";
    for (const p of a.pictures) {
      const fig = document.createElement("figure");
      fig.dataset.method = p.method;
      fig.innerHTML = `<img alt=""><figcaption></figcaption>`;
      fig.querySelector("img").src = p.url;
      fig.querySelector("figcaption").textContent = p.title;
      grid.appendChild(fig);
    }
    classPicker(a.top, a.target);
    const layer = $("ex-layer").value;
    fillLayers($("ex-layer"), a.layers, `default (${a.layer || "the model's"})`);
    $("ex-layer").value = layer;
    $("ex-checks").hidden = !a.checks.length;
    $("ex-checks").textContent = a.checks.join("\n");
    download("ex-download", a.panel.url, a.panel.name);
    status("ex-status", `${a.label} (${(a.probability * 100).toFixed(1)} %), ${a.seconds.toFixed(2)} s`);
    document.body.dataset.explained = a.label;
  } catch (err) {
    status("ex-status", err.message, !err.cancelled);
  } finally {
    endRun("explain");
  }
}

function classPicker(top, chosen) {
  const box = $("ex-classes");
  box.innerHTML = "";
  for (const c of top) {
    const row = document.createElement("label");
    row.className = "class-row";
    row.innerHTML = `<input type="radio" name="ex-class"><span></span>`;
    row.querySelector("input").value = c.index;
    row.querySelector("input").checked = c.index === chosen;
    row.querySelector("span").textContent = `${c.label} · ${(c.probability * 100).toFixed(1)} %`;
    row.querySelector("input").addEventListener("change", () => explain(c.index));
    box.appendChild(row);
  }
}

$("ex-run").addEventListener("click", () => {
  const checked = document.querySelector("#ex-classes input:checked");
  explain(checked ? parseInt(checked.value, 10) : null);
});

// ---------------------------------------------------------------------------- Webcam
const cam = {stream: null, running: false, frames: 0, t0: 0};

async function startCamera() {
  try {
    cam.stream = await navigator.mediaDevices.getUserMedia({video: true, audio: false});
  } catch (err) {
    status("wc-status", `no camera: ${err.message}`, true);
    return;
  }
  const video = $("wc-video");
  video.srcObject = cam.stream;
  await video.play();
  cam.running = true;
  cam.frames = 0;
  cam.t0 = performance.now();
  $("wc-start").disabled = true;
  $("wc-stop").disabled = false;
  loop();
}

function stopCamera() {
  cam.running = false;
  if (cam.stream) cam.stream.getTracks().forEach((t) => t.stop());
  cam.stream = null;
  $("wc-start").disabled = false;
  $("wc-stop").disabled = true;
}

async function loop() {
  const video = $("wc-video");
  const grab = document.createElement("canvas");
  const out = $("wc-output");
  while (cam.running) {
    const side = parseInt($("wc-size").value, 10);
    const scale = side / Math.max(video.videoWidth || side, video.videoHeight || side);
    grab.width = Math.round((video.videoWidth || side) * scale);
    grab.height = Math.round((video.videoHeight || side * 0.75) * scale);
    grab.getContext("2d").drawImage(video, 0, 0, grab.width, grab.height);
    const blob = await new Promise((r) => grab.toBlob(r, "image/jpeg", 0.85));
    try {
      const styled = await api(`/api/frame?style=${encodeURIComponent($("wc-style").value)}`, blob);
      const bitmap = await createImageBitmap(styled);
      out.width = bitmap.width;
      out.height = bitmap.height;
      out.getContext("2d").drawImage(bitmap, 0, 0);
      cam.frames += 1;
      out.dataset.frames = String(cam.frames);
      const fps = cam.frames / ((performance.now() - cam.t0) / 1000);
      status("wc-status", `${grab.width}×${grab.height}, ${fps.toFixed(1)} frames/s`);
    } catch (err) {
      status("wc-status", err.message, true);
      stopCamera();
    }
  }
}

$("wc-start").addEventListener("click", startCamera);
$("wc-stop").addEventListener("click", stopCamera);

// ---------------------------------------------------------------------------- start
(async () => {
  info = await (await fetch("/api/info")).json();
  $("about").textContent = `cvtools ${info.version} · on this computer only · uploads up to ${info.max_upload_mb} MB`;
  styleRows();
  fillLayers($("dr-layer"), info.layers, `default (${info.dream_layers.join(", ")})`);
  fillLayers($("ex-layer"), info.layers, `default (${info.cam_layer})`);
  for (const m of info.methods) {
    const row = document.createElement("label");
    row.className = "class-row";
    row.innerHTML = `<input type="checkbox"><span></span>`;
    row.querySelector("input").value = m.name;
    row.querySelector("input").checked = m.default;
    row.querySelector("span").textContent = m.title;
    $("ex-methods").appendChild(row);
  }
  await resumeVideo();
  resumeRun("dream");
  resumeRun("explain");
  document.body.dataset.ready = "1";
})();
