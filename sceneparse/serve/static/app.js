// The sceneparse web page: no external resources. Its URLs are relative, so that it works behind a
// reverse proxy that serves the service under a path (https://host/sceneparse/). An image goes to POST /v1/parse?format=json&maps=1
// (class shares, and the labels and confidence as base64 HxW bytes), drawn here as an overlay;
// a video goes to POST /v1/jobs and is polled until its overlay video is ready.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { classes: [], file: null, labels: null, confidence: null, width: 0, height: 0 };

function authHeaders() {
  const token = $("token").value.trim() || localStorage.getItem("sceneparse-token") || "";
  return token ? { Authorization: "Bearer " + token } : {};
}

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

async function errorText(response) {
  try {
    const body = await response.json();
    if (body && body.error) return body.error;
  } catch (e) { /* not JSON */ }
  return response.status + " " + response.statusText;
}

async function checkAuth(response) {
  if (response.status === 401) {
    $("token-row").hidden = false;
    $("token").focus();
  }
  return response;
}

async function loadModels() {
  const response = await checkAuth(await fetch("v1/models", { headers: authHeaders() }));
  if (!response.ok) {
    $("model").textContent = "model: " + (await errorText(response));
    return;
  }
  const model = (await response.json()).models[0];
  state.classes = model.classes;
  $("model").textContent = `model ${model.name || "?"} (${model.runtime}), ${model.classes.length} classes`;
  const lim = model.limits;
  $("limits").textContent = `images up to ${lim.max_upload_mb} MB and ${(lim.max_pixels / 1e6).toFixed(0)} megapixels; ` +
    `videos up to ${lim.max_video_mb} MB`;
  renderLegend(null);
}

function renderLegend(shares) {
  const legend = $("legend");
  legend.textContent = "";
  for (const c of state.classes) {
    const li = document.createElement("li");
    li.dataset.class = c.name;
    li.dataset.index = c.index;
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = `rgb(${c.color.join(",")})`;
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = c.name;
    const share = document.createElement("span");
    share.className = "share";
    if (shares) {
      share.textContent = (100 * shares[c.index]).toFixed(1) + "%";
      if (shares[c.index] === 0) li.classList.add("absent");
    }
    li.append(swatch, name, share);
    legend.append(li);
  }
}

function decodeBytes(b64) {
  const raw = atob(b64);
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}

async function parseImage(file) {
  // the answer of an image chosen earlier that comes after this one's is dropped, not drawn over it
  const ticket = (state.ticket = (state.ticket || 0) + 1);
  $("video-result").hidden = true;
  setStatus(`labelling ${file.name}...`);
  const form = new FormData();
  form.append("image", file, file.name);
  const t0 = performance.now();
  const response = await checkAuth(await fetch("v1/parse?format=json&maps=1", {
    method: "POST", body: form, headers: authHeaders(),
  }));
  if (!response.ok) {
    const error = await errorText(response);
    if (ticket === state.ticket) setStatus(`${file.name}: ${error}`, true);
    return;
  }
  const body = await response.json();
  const bitmap = await createImageBitmap(file).catch(() => null);
  if (ticket !== state.ticket) return;
  state.file = file; // the download labels this file: set once it is labelled, not when an upload fails
  state.classes = body.classes.map(({ index, name, color }) => ({ index, name, color }));
  state.width = body.width;
  state.height = body.height;
  state.labels = decodeBytes(body.labels);
  state.confidence = decodeBytes(body.confidence);
  const shown = drawPhoto(bitmap);
  drawLabels();
  renderLegend(body.classes.map((c) => c.share));
  $("timing").textContent = `${body.width}x${body.height}, parse ${body.timing_ms.parse_ms.toFixed(0)} ms ` +
    `(batch of ${body.batch_size}), ${(performance.now() - t0).toFixed(0)} ms in all`;
  $("result").hidden = false;
  $("result").dataset.ready = "true";
  setStatus(shown ? `${file.name}: labelled` : `${file.name}: labelled (this browser cannot show the image ` +
    "itself, a TIFF or the like: the labels alone)");
}

// The photo under the labels; false (a grey canvas) where the browser could not decode the file
// (bitmap null: a TIFF), which the service reads and labels all the same.
function drawPhoto(bitmap) {
  const photo = $("photo");
  photo.width = state.width;
  photo.height = state.height;
  const ctx = photo.getContext("2d");
  if (bitmap) {
    ctx.drawImage(bitmap, 0, 0, state.width, state.height);
    return true;
  }
  ctx.fillStyle = "#808080";
  ctx.fillRect(0, 0, state.width, state.height);
  return false;
}

function drawLabels() {
  const canvas = $("labels");
  canvas.width = state.width;
  canvas.height = state.height;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(state.width, state.height);
  const colors = state.classes.map((c) => c.color);
  for (let i = 0; i < state.labels.length; i++) {
    const color = colors[state.labels[i]] || [0, 0, 0];
    img.data[4 * i] = color[0];
    img.data[4 * i + 1] = color[1];
    img.data[4 * i + 2] = color[2];
    img.data[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
  applyOpacity();
}

function applyOpacity() {
  const value = Number($("opacity").value);
  $("labels").style.opacity = String(value / 100);
  $("opacity-value").textContent = value + "%";
}

function onHover(event) {
  if (!state.labels) return;
  const rect = $("labels").getBoundingClientRect();
  const x = Math.floor(((event.clientX - rect.left) / rect.width) * state.width);
  const y = Math.floor(((event.clientY - rect.top) / rect.height) * state.height);
  if (x < 0 || y < 0 || x >= state.width || y >= state.height) return;
  const i = y * state.width + x;
  const cls = state.classes[state.labels[i]];
  const confidence = Math.round((100 * state.confidence[i]) / 255);
  $("hover").textContent = `${cls.name} (${confidence}%) at ${x}, ${y}`;
  $("hover").dataset.class = cls.name;
  for (const li of $("legend").children) li.classList.toggle("active", li.dataset.class === cls.name);
}

async function downloadLabels() {
  if (!state.file) return;
  const form = new FormData();
  form.append("image", state.file, state.file.name);
  const response = await checkAuth(await fetch("v1/parse?format=png", {
    method: "POST", body: form, headers: authHeaders(),
  }));
  if (!response.ok) {
    setStatus(`download: ${await errorText(response)}`, true);
    return;
  }
  const url = URL.createObjectURL(await response.blob());
  const a = document.createElement("a");
  a.href = url;
  a.download = state.file.name.replace(/\.[^.]*$/, "") + "_labels.png";
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

async function parseVideo(file) {
  $("result").hidden = true;
  $("video-result").hidden = false;
  $("video-done").hidden = true;
  $("video-progress").value = 0;
  setStatus(`uploading ${file.name}...`);
  const form = new FormData();
  form.append("video", file, file.name);
  const response = await checkAuth(await fetch("v1/jobs", { method: "POST", body: form, headers: authHeaders() }));
  if (!response.ok) {
    setStatus(`${file.name}: ${await errorText(response)}`, true);
    return;
  }
  let job = await response.json();
  setStatus(`${file.name}: labelling the video...`);
  while (job.status === "queued" || job.status === "running") {
    await new Promise((resolve) => setTimeout(resolve, 500));
    const poll = await fetch(`v1/jobs/${job.id}`, { headers: authHeaders() });
    if (!poll.ok) {
      setStatus(`${file.name}: ${await errorText(poll)}`, true);
      return;
    }
    job = await poll.json();
    $("video-progress").value = job.progress || 0;
    $("video-status").textContent = `${job.status}: ${job.frames}${job.total ? " / " + job.total : ""} frames`;
  }
  if (job.status !== "done") {
    setStatus(`${file.name}: ${job.error || job.status}`, true);
    return;
  }
  const video = await fetch(`v1/jobs/${job.id}/video`, { headers: authHeaders() });
  const url = URL.createObjectURL(await video.blob());
  const player = $("video");
  player.hidden = false;
  // MPEG-4 part 2 (what OpenCV writes without an H.264 encoder) plays in VLC or mpv, not in browsers
  player.onerror = () => {
    player.hidden = true;
    setStatus(`${file.name}: ${job.frames} frames labelled; this browser cannot play the video ` +
      `(${job.codec === "mp4v" ? "MPEG-4 part 2: the service has no H.264 encoder; installing ffmpeg gives it one" : job.codec}): ` +
      "download it and play it in VLC or mpv", true);
  };
  player.src = url;
  $("video-download").href = url;
  $("video-download").download = file.name.replace(/\.[^.]*$/, "") + "_overlay.mp4";
  $("video-done").hidden = false;
  setStatus(`${file.name}: ${job.frames} frames labelled`);
}

function handleFile(file) {
  if (!file) return;
  const task = file.type.startsWith("video/") ? parseVideo(file) : parseImage(file);
  task.catch((err) => setStatus(`${file.name}: ${err}`, true));
}

function init() {
  const drop = $("drop");
  $("file").addEventListener("change", (e) => handleFile(e.target.files[0]));
  // the file input is hidden and its label takes no focus: Enter or Space on the drop zone opens it
  drop.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      $("file").click();
    }
  });
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    handleFile(e.dataTransfer.files[0]);
  });
  $("opacity").addEventListener("input", applyOpacity);
  $("labels").addEventListener("mousemove", onHover);
  $("download").addEventListener("click", () => downloadLabels().catch((err) => setStatus(String(err), true)));
  $("token").addEventListener("change", () => {
    localStorage.setItem("sceneparse-token", $("token").value.trim());
    loadModels();
  });
  loadModels().catch((err) => setStatus(String(err), true));
}

init();
