// retinakit page: send an image to /v1/detect, draw boxes, scores and landmarks, show crops and JSON.
// No dependencies: everything here is served by the package.
"use strict";

const $ = (id) => document.getElementById(id);
const LANDMARK_COLORS = {
  left_eye: "#ff3b30", right_eye: "#34c759", nose: "#007aff", left_mouth: "#ff9500", right_mouth: "#af52de",
};
let lastBlob = null;
let stream = null;

function setStatus(text, isError = false, faces = "") {
  const status = $("status");
  status.textContent = text;
  status.classList.toggle("error", isError);
  status.dataset.faces = faces;
}

async function loadInfo() {
  try {
    const info = await (await fetch("/readyz")).json();
    if (info.status !== "ready") {
      $("model").textContent = "model not ready: " + (info.error ? info.error.message : "");
      return;
    }
    const m = info.model;
    $("model").textContent = `model ${m.name} (${m.weights}, ${m.backend}) · retinakit ${m.version} · ` +
      `up to ${(info.limits.max_upload_bytes / 1048576).toFixed(0)} MB, ` +
      `${(info.limits.max_pixels / 1e6).toFixed(0)} megapixels`;
    $("threshold").min = info.limits.min_threshold;
    $("threshold").value = info.defaults.threshold;
    $("threshold-value").textContent = Number(info.defaults.threshold).toFixed(2);
    $("key-row").hidden = !info.auth;
  } catch (err) {
    $("model").textContent = "cannot reach the service: " + err;
  }
}

function query() {
  const params = new URLSearchParams({
    threshold: $("threshold").value,
    landmarks: $("landmarks").checked,
    crops: $("crops").checked,
    tta: $("tta").checked,
  });
  return params.toString();
}

async function detect(blob) {
  lastBlob = blob;
  setStatus("Detecting…");
  const headers = { "Content-Type": blob.type || "application/octet-stream" };
  const key = $("api-key").value;
  if (key) headers["Authorization"] = "Bearer " + key;
  let response, body;
  try {
    response = await fetch("/v1/detect?" + query(), { method: "POST", body: blob, headers });
    body = await response.json();
  } catch (err) {
    setStatus("Request failed: " + err, true);
    return;
  }
  $("json").textContent = JSON.stringify(body, (k, v) => (k === "crop" ? v.slice(0, 32) + "…" : v), 2);
  if (!response.ok) {
    setStatus(`Error ${response.status} (${body.error.code}): ${body.error.message}`, true);
    if (response.status === 401) $("key-row").hidden = false;
    return;
  }
  await draw(blob, body);
  showCrops(body.faces);
  const n = body.faces.length;
  setStatus(`${n} face${n === 1 ? "" : "s"} · ${body.width} × ${body.height} · ${body.time_ms.toFixed(0)} ms`, false,
    String(n));
}

async function draw(blob, body) {
  const bitmap = await createImageBitmap(blob, { imageOrientation: "from-image" });
  const canvas = $("view");
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(bitmap, 0, 0);
  const unit = Math.max(2, Math.round(Math.max(bitmap.width, bitmap.height) / 300));
  ctx.lineWidth = unit;
  ctx.font = `${6 * unit}px system-ui, sans-serif`;
  ctx.textBaseline = "bottom";
  for (const face of body.faces) {
    const [x1, y1, x2, y2] = face.box;
    ctx.strokeStyle = "#00e08a";
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    const label = face.score.toFixed(2);
    const w = ctx.measureText(label).width + 2 * unit;
    ctx.fillStyle = "#00e08a";
    ctx.fillRect(x1 - unit / 2, y1 - 7 * unit, w, 7 * unit);
    ctx.fillStyle = "#000";
    ctx.fillText(label, x1 + unit / 2, y1 - unit / 2);
    for (const [name, [x, y]] of Object.entries(face.landmarks || {})) {
      ctx.fillStyle = LANDMARK_COLORS[name] || "#fff";
      ctx.beginPath();
      ctx.arc(x, y, 1.5 * unit, 0, 2 * Math.PI);
      ctx.fill();
    }
  }
}

function showCrops(faces) {
  const out = $("crops-out");
  out.replaceChildren();
  faces.forEach((face, i) => {
    if (!face.crop) return;
    const fig = document.createElement("figure");
    const img = document.createElement("img");
    img.src = "data:image/png;base64," + face.crop;
    img.alt = `face ${i + 1}`;
    const caption = document.createElement("figcaption");
    caption.textContent = `#${i + 1} · ${face.score.toFixed(2)}`;
    fig.append(img, caption);
    out.append(fig);
  });
  if (!out.children.length) out.textContent = "none";
}

// ---------------------------------------------------------------- input: file, drop, camera

$("file").addEventListener("change", (e) => { if (e.target.files[0]) detect(e.target.files[0]); });
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  if (e.dataTransfer.files[0]) detect(e.dataTransfer.files[0]);
});

$("camera-start").addEventListener("click", async () => {
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: true });
  } catch (err) {
    setStatus("Camera unavailable: " + err.message, true);
    return;
  }
  $("camera").srcObject = stream;
  $("camera").hidden = $("camera-capture").hidden = $("camera-stop").hidden = false;
});
$("camera-capture").addEventListener("click", () => {
  const video = $("camera");
  const grab = document.createElement("canvas");
  grab.width = video.videoWidth;
  grab.height = video.videoHeight;
  grab.getContext("2d").drawImage(video, 0, 0);
  grab.toBlob((blob) => blob && detect(blob), "image/jpeg", 0.92);
});
$("camera-stop").addEventListener("click", () => {
  if (stream) stream.getTracks().forEach((t) => t.stop());
  stream = null;
  $("camera").hidden = $("camera-capture").hidden = $("camera-stop").hidden = true;
});

// options: re-run on the last image when they change
$("threshold").addEventListener("input", () => {
  $("threshold-value").textContent = Number($("threshold").value).toFixed(2);
});
for (const id of ["threshold", "landmarks", "crops", "tta"]) {
  $(id).addEventListener("change", () => { if (lastBlob) detect(lastBlob); });
}

loadInfo();
