// In-browser live landmarks: the same pipeline as zoo (detect -> crop -> network -> decode), with every number
// the pipeline needs read from config.json, which space/browser.py writes from the registry and the weights.
"use strict";

const params = new URLSearchParams(location.search);
const CONFIG_URL = params.get("config") || "config.json";
const $ = (id) => document.getElementById(id);
const now = () => performance.now();

let config = null, detector = null, sessions = {}, current = null;
const state = { track: null, frame: 0, lastDetect: -1, stats: { frames: 0, detections: 0, fps: 0, ms: {} } };

// ---------------------------------------------------------------------------------------------- tensors
function pixelsOf(source, w, h) {
  const c = new OffscreenCanvas(w, h), ctx = c.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(source, 0, 0, w, h);
  return ctx.getImageData(0, 0, w, h).data;
}

// zoo.crop.crop_matrix: image -> the size x size crop of `box`, a box in the frame rolled by `angle` about its
// centre (the crop comes out level). [[a, c, e], [b, d, f]] as canvas setTransform takes it.
function cropMatrix(box, size, angle) {
  const [x0, y0, x1, y1] = box, sx = size / Math.max(x1 - x0, 1e-6), sy = size / Math.max(y1 - y0, 1e-6);
  const cx = (x0 + x1) / 2, cy = (y0 + y1) / 2, c = Math.cos(angle), s = Math.sin(angle);
  const r = [[c, s, cx - c * cx - s * cy], [-s, c, cy + s * cx - c * cy]];
  return [0, 1].map((i) => [0, 1, 2].map((j) => (i ? sy : sx) * r[i][j] + (j === 2 ? -(i ? y0 * sy : x0 * sx) : 0)));
}

// The crop as cv2.warpAffine makes it: black outside the picture; the half-pixel shift turns canvas sampling
// (pixel centres at +0.5) into OpenCV's (centres at integers).
function cropTensor(source, box, size, mean, std, angle = 0) {
  const m = cropMatrix(box, size, angle);
  const c = new OffscreenCanvas(size, size), ctx = c.getContext("2d", { willReadFrequently: true });
  ctx.fillStyle = "#000"; ctx.fillRect(0, 0, size, size);
  ctx.imageSmoothingEnabled = true; ctx.imageSmoothingQuality = "low";
  ctx.setTransform(m[0][0], m[1][0], m[0][1], m[1][1], m[0][2] + 0.5 - 0.5 * (m[0][0] + m[0][1]),
                   m[1][2] + 0.5 - 0.5 * (m[1][0] + m[1][1]));
  ctx.drawImage(source, 0, 0);
  const px = ctx.getImageData(0, 0, size, size).data, n = size * size, out = new Float32Array(3 * n);
  for (let ch = 0; ch < 3; ch++) {
    const scale = 1 / (255 * std[ch]), bias = -mean[ch] / std[ch];
    for (let i = 0; i < n; i++) out[ch * n + i] = px[4 * i + ch] * scale + bias;
  }
  return new ort.Tensor("float32", out, [1, 3, size, size]);
}

// ---------------------------------------------------------------------------------------------- YuNet
// zoo.detectors.YuNetDetector: a copy whose longer side is input_size, BGR 0-255, padded (here to the graph's
// fixed square); YuNet's own decode, then greedy NMS as cv2.dnn.NMSBoxes.
async function detect(source, w, h) {
  const d = config.detector, S = d.input_size, s = Math.min(1, S / Math.max(w, h));
  const sw = Math.max(1, Math.round(w * s)), sh = Math.max(1, Math.round(h * s));
  const px = pixelsOf(source, sw, sh), x = new Float32Array(3 * S * S);
  for (let r = 0; r < sh; r++) for (let c = 0; c < sw; c++) {
    const i = 4 * (r * sw + c), o = r * S + c;
    x[o] = px[i + 2]; x[S * S + o] = px[i + 1]; x[2 * S * S + o] = px[i];
  }
  const out = await detector.run({ input: new ort.Tensor("float32", x, [1, 3, S, S]) });
  const rows = [];
  for (const st of [8, 16, 32]) {
    const cols = S / st, cls = out[`cls_${st}`].data, obj = out[`obj_${st}`].data;
    const bb = out[`bbox_${st}`].data, kp = out[`kps_${st}`].data;
    for (let i = 0; i < cls.length; i++) {
      const score = Math.sqrt(Math.min(Math.max(cls[i], 0), 1) * Math.min(Math.max(obj[i], 0), 1));
      if (score < d.score_threshold) continue;
      const ax = i % cols, ay = Math.floor(i / cols);
      const cx = (ax + bb[4 * i]) * st, cy = (ay + bb[4 * i + 1]) * st;
      const bw = Math.exp(bb[4 * i + 2]) * st, bh = Math.exp(bb[4 * i + 3]) * st;
      // zoo.detectors.YuNetDetector.detect_rolls: the slope of the eye keypoints' line levels the crop
      const roll = Math.atan2(kp[10 * i + 3] - kp[10 * i + 1], kp[10 * i + 2] - kp[10 * i]);
      rows.push({ box: [(cx - bw / 2) / s, (cy - bh / 2) / s, (cx + bw / 2) / s, (cy + bh / 2) / s], score, roll });
    }
  }
  rows.sort((a, b) => b.score - a.score);
  const kept = [];
  for (const r of rows) if (kept.every((k) => iou(k.box, r.box) <= d.nms_threshold)) kept.push(r);
  return kept;
}

function iou(a, b) {
  const iw = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const ih = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const inter = iw * ih;
  return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter);
}

// zoo.crop.rolled_crop_box: the rule applied to the upright face inside an axis-aligned box of a rolled face
function rolledCropBox(b, rule, angle) {
  const [dx, dy, sx, sy] = rule, c = Math.abs(Math.cos(angle)), s = Math.abs(Math.sin(angle)), aspect = sx / sy;
  const w0 = ((b[2] - b[0]) + (b[3] - b[1])) / ((1 + aspect) * (c + s)), h0 = aspect * w0;
  const ox = dx * w0, oy = dy * h0;
  const cx = (b[0] + b[2]) / 2 + Math.cos(angle) * ox - Math.sin(angle) * oy;
  const cy = (b[1] + b[3]) / 2 + Math.sin(angle) * ox + Math.cos(angle) * oy;
  return [cx - sx * w0 / 2, cy - sy * h0 / 2, cx + sx * w0 / 2, cy + sy * h0 / 2];
}

// zoo.crop.points_roll and rolled_landmark_box: a face's eye-line roll, and its training crop levelled by it
function pointsRoll(pts, pair) {
  const [a, b] = [pts[pair[0]], pts[pair[1]]];
  return Math.atan2(b[1] - a[1], b[0] - a[0]);
}

function rolledLandmarkBox(pts, angle, scale) {
  const n = pts.length, c = Math.cos(angle), s = Math.sin(angle);
  const mx = pts.reduce((t, p) => t + p[0], 0) / n, my = pts.reduce((t, p) => t + p[1], 0) / n;
  const level = pts.map(([x, y]) => [c * (x - mx) + s * (y - my), -s * (x - mx) + c * (y - my)]);
  const [bx0, by0, bx1, by1] = landmarkCropBox(level, scale);
  const midx = (bx0 + bx1) / 2, midy = (by0 + by1) / 2, hw = (bx1 - bx0) / 2, hh = (by1 - by0) / 2;
  const cx = mx + c * midx - s * midy, cy = my + s * midx + c * midy;
  return [cx - hw, cy - hh, cx + hw, cy + hh];
}

// zoo.crop.gt_crop_box: the landmark box scaled about its centre (the tracker's next crop)
function landmarkCropBox(pts, scale) {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const [x, y] of pts) { x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y); }
  const cx = (x0 + x1) / 2, cy = (y0 + y1) / 2, hw = (x1 - x0) / 2 * scale, hh = (y1 - y0) / 2 * scale;
  return [cx - hw, cy - hh, cx + hw, cy + hh];
}

// ---------------------------------------------------------------------------------------------- PIPNet
// zoo.nets.pipnet.PIPNet.decode: each point's best cell, its offsets, its neighbours' predictions of it, merged
// with the weights in the weight file (config merge: per point, [column, weight] pairs).
function decodePipnet(out, m) {
  const cls = out.scores, [, n, H, W] = cls.dims, hw = H * W, k = m.num_nb;
  const ox = out.offset_x.data, oy = out.offset_y.data, nbx = out.nb_x.data, nby = out.nb_y.data;
  const candX = new Float64Array(n * (1 + k)), candY = new Float64Array(n * (1 + k)), peak = new Float32Array(n);
  for (let j = 0; j < n; j++) {
    let best = 0, bv = -Infinity;
    for (let i = 0; i < hw; i++) { const v = cls.data[j * hw + i]; if (v > bv) { bv = v; best = i; } }
    const gx = best % W, gy = Math.floor(best / W);
    peak[j] = bv;
    candX[j] = gx + ox[j * hw + best]; candY[j] = gy + oy[j * hw + best];
    for (let s = 0; s < k; s++) {
      candX[n + j * k + s] = gx + nbx[(j * k + s) * hw + best];
      candY[n + j * k + s] = gy + nby[(j * k + s) * hw + best];
    }
  }
  const pts = [], evidence = [];
  for (let j = 0; j < n; j++) {
    let x = 0, y = 0, sq = 0;
    for (const [c, wgt] of m.merge[j]) { x += wgt * candX[c]; y += wgt * candY[c]; sq += wgt * (candX[c] ** 2 + candY[c] ** 2); }
    pts.push([x / W, y / H]);
    // the candidates' scatter around their merged mean (grid cells): Face.scores' second feature
    evidence.push([peak[j], Math.log(Math.sqrt(Math.max(sq - x * x - y * y, 0)) + m.spread_floor)]);
  }
  return { pts, peak, evidence };
}

function decodeHeatmaps(out) {          // zoo.nets.decode.decode_heatmaps (MobileFAN)
  const hm = Object.values(out)[0], [, n, H, W] = hm.dims, hw = H * W, d = hm.data, pts = [], peak = [];
  const at = (j, x, y) => d[j * hw + Math.min(Math.max(y, 0), H - 1) * W + Math.min(Math.max(x, 0), W - 1)];
  for (let j = 0; j < n; j++) {
    let best = 0, bv = -Infinity;
    for (let i = 0; i < hw; i++) if (d[j * hw + i] > bv) { bv = d[j * hw + i]; best = i; }
    const x = best % W, y = Math.floor(best / W);
    const dx = x > 0 && x < W - 1 ? Math.sign(at(j, x + 1, y) - at(j, x - 1, y)) : 0;
    const dy = y > 0 && y < H - 1 ? Math.sign(at(j, x, y + 1) - at(j, x, y - 1)) : 0;
    pts.push([(x + 0.25 * dx + 0.5) / W, (y + 0.25 * dy + 0.5) / H]); peak.push(bv);
  }
  return { pts, peak, evidence: peak.map((v) => [v]) };
}

// zoo.registry.Confidence: sigmoid(weights . evidence + bias), or null where the entry has no calibration
function scores(evidence, conf) {
  if (!conf) return null;
  return evidence.map((e) => 1 / (1 + Math.exp(-(e.reduce((a, v, i) => a + v * conf.weights[i], 0) + conf.bias))));
}

async function landmarks(source, cropBox, angle = 0) {
  const m = config.models[current], t0 = now();
  const x = cropTensor(source, cropBox, m.input_size, m.mean, m.std, angle);
  const t1 = now();
  const out = await sessions[current].run({ input: x });
  const t2 = now();
  const { pts, peak, evidence } = m.arch === "pipnet" ? decodePipnet(out, m) : decodeHeatmaps(out);
  // zoo.crop.to_image_coords: into the box, then turned back by the crop's roll about the box's centre
  const [x0, y0, x1, y1] = cropBox, bcx = (x0 + x1) / 2, bcy = (y0 + y1) / 2;
  const ca = Math.cos(angle), sa = Math.sin(angle);
  const image = pts.map(([u, v]) => {
    const rx = x0 + u * (x1 - x0) - bcx, ry = y0 + v * (y1 - y0) - bcy;
    return [bcx + ca * rx - sa * ry, bcy + sa * rx + ca * ry];
  });
  return { image, peak, scores: scores(evidence, m.confidence), ms: { preprocess: t1 - t0, model: t2 - t1, decode: now() - t2 } };
}

// zoo.Landmarker._relevel: a face whose landmarks still show a roll of upright_from_deg or more, again from
// the training crop of those landmarks levelled by their eye line (a second round if that turned it > 5 deg)
async function relevel(source, r) {
  const m = config.models[current];
  if (!m.norm_points || config.upright_from_deg == null) return r;
  let seen = pointsRoll(r.image, m.norm_points);
  if (Math.abs(seen) < config.upright_from_deg * Math.PI / 180) return r;
  for (let round = 0; round < 2; round++) {
    const used = seen, again = await landmarks(source, rolledLandmarkBox(r.image, used, m.gt_box_scale), used);
    for (const k of ["preprocess", "model", "decode"]) again.ms[k] += r.ms[k];
    r = again; seen = pointsRoll(r.image, m.norm_points);
    if (Math.abs(seen - used) <= 5 * Math.PI / 180) break;
  }
  return r;
}

// One frame the way zoo.load(name)(image) does it: every face the detector finds, its crop under the
// detector's rule levelled by the keypoints' roll, then levelled again where the landmarks say so.
async function runImage(source, w, h) {
  const t0 = now(), faces = await detect(source, w, h), ms = { detect: now() - t0, preprocess: 0, model: 0, decode: 0 };
  const out = [];
  for (const f of faces) {
    const r = await relevel(source, await landmarks(source, rolledCropBox(f.box, config.detector.crop_rule, f.roll), f.roll));
    for (const k of ["preprocess", "model", "decode"]) ms[k] += r.ms[k];
    out.push({ box: f.box, score: f.score, landmarks: r.image, scores: r.scores });
  }
  return { faces: out, ms };
}

// ---------------------------------------------------------------------------------------------- tracking
// zoo.track's idea in brief: detect when no face is held (and every `redetect_every` frames); otherwise crop
// from the last landmarks; One Euro filters on the points (cut-off growing with speed, in face sizes per second).
class OneEuro {
  constructor(minCutoff, beta, dCutoff) { Object.assign(this, { minCutoff, beta, dCutoff, x: null, dx: null, t: null }); }
  static alpha(dt, cutoff) { const tau = 1 / (2 * Math.PI * cutoff); return 1 / (1 + tau / dt); }
  filter(pts, t, size) {
    if (!this.x || t <= this.t) { this.x = pts.map((p) => p.slice()); this.dx = pts.map(() => [0, 0]); this.t = t; return pts; }
    const dt = t - this.t, ad = OneEuro.alpha(dt, this.dCutoff);
    this.x = pts.map((p, i) => {
      const v = [(p[0] - this.x[i][0]) / dt, (p[1] - this.x[i][1]) / dt];
      this.dx[i] = [this.dx[i][0] + ad * (v[0] - this.dx[i][0]), this.dx[i][1] + ad * (v[1] - this.dx[i][1])];
      const speed = Math.hypot(this.dx[i][0], this.dx[i][1]) / Math.max(size, 1e-6);
      const a = OneEuro.alpha(dt, this.minCutoff + this.beta * speed);
      return [this.x[i][0] + a * (p[0] - this.x[i][0]), this.x[i][1] + a * (p[1] - this.x[i][1])];
    });
    this.t = t;
    return this.x;
  }
}

async function trackFrame(source, w, h, t) {
  const tr = config.tracking, ms = { detect: 0, preprocess: 0, model: 0, decode: 0 };
  state.frame += 1;
  if (!state.track || (tr.redetect_every && state.frame - state.lastDetect >= tr.redetect_every)) {
    const t0 = now(), faces = await detect(source, w, h);
    ms.detect = now() - t0; state.lastDetect = state.frame; state.stats.detections += 1;
    state.track = faces.length ? { crop: rolledCropBox(faces[0].box, config.detector.crop_rule, faces[0].roll),
                                   angle: faces[0].roll,
                                   filter: state.track ? state.track.filter : new OneEuro(tr.min_cutoff, tr.beta, tr.d_cutoff) } : null;
  }
  if (!state.track) return { pts: null, scores: null, ms };
  const r = await landmarks(source, state.track.crop, state.track.angle);
  for (const k of ["preprocess", "model", "decode"]) ms[k] = r.ms[k];
  const meanPeak = r.peak.reduce((a, b) => a + b, 0) / r.peak.length;
  const m = config.models[current];
  if (meanPeak < tr.min_mean_peak) { state.track = null; return { pts: null, scores: null, ms }; }   // lost
  // the next crop: these landmarks' training crop, levelled where they are rolled (zoo.track does the same)
  const roll = m.norm_points ? pointsRoll(r.image, m.norm_points) : 0;
  const level = config.upright_from_deg != null && Math.abs(roll) >= config.upright_from_deg * Math.PI / 180;
  state.track.angle = level ? roll : 0;
  state.track.crop = level ? rolledLandmarkBox(r.image, roll, m.gt_box_scale) : landmarkCropBox(r.image, m.gt_box_scale);
  const box = state.track.crop;
  const pts = state.track.filter.filter(r.image, t, Math.max(box[2] - box[0], box[3] - box[1]));
  return { pts, scores: r.scores, ms };
}

// ---------------------------------------------------------------------------------------------- drawing
// zoo.draw: a point the model doubts (score under config.low_confidence) is a hollow ring
function draw(ctx, pts, contours, pointScores) {
  if (!pts) return;
  ctx.strokeStyle = "#40c840"; ctx.fillStyle = "#40c840"; ctx.lineWidth = 1.5;
  for (const c of contours) {
    ctx.beginPath();
    c.indices.forEach((i, k) => (k ? ctx.lineTo(...pts[i]) : ctx.moveTo(...pts[i])));
    if (c.closed) ctx.closePath();
    ctx.stroke();
  }
  pts.forEach(([x, y], i) => {
    ctx.beginPath();
    if (pointScores && pointScores[i] < config.low_confidence) { ctx.arc(x, y, 3, 0, 2 * Math.PI); ctx.stroke(); }
    else { ctx.arc(x, y, 2, 0, 2 * Math.PI); ctx.fill(); }
  });
}

async function loop() {
  const video = $("video"), view = $("view"), ctx = view.getContext("2d");
  let last = now();
  const step = async () => {
    if (video.readyState >= 2 && video.videoWidth) {
      const w = video.videoWidth, h = video.videoHeight;
      if (view.width !== w) { view.width = w; view.height = h; }
      ctx.drawImage(video, 0, 0, w, h);
      const t = now() / 1000, { pts, scores: sc, ms } = await trackFrame(view, w, h, t);
      draw(ctx, pts, config.models[current].contours, sc);
      const dt = now() - last; last = now();
      const st = state.stats;
      st.frames += 1; st.fps = st.fps ? 0.9 * st.fps + 0.1 * (1000 / dt) : 1000 / dt; st.ms = ms;
      st.last = pts; st.lastScores = sc;
      $("stats").textContent = `${current} | ${st.fps.toFixed(1)} FPS | detect ${ms.detect.toFixed(1)} ms, ` +
        `preprocess ${ms.preprocess.toFixed(1)}, model ${ms.model.toFixed(1)}, decode ${ms.decode.toFixed(1)} | ` +
        `detector ran on ${st.detections} of ${st.frames} frames | onnxruntime-web (wasm) in this browser`;
    }
    requestAnimationFrame(step);
  };
  requestAnimationFrame(step);
}

async function useModel(name) {
  if (!sessions[name]) sessions[name] = await ort.InferenceSession.create(config.models[name].onnx);
  current = name;
  state.track = null;
}

async function startCamera() {
  const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
  const video = $("video");
  video.srcObject = stream;
  await video.play();
  $("status").textContent = "running in this browser";
  loop();
}

async function init() {
  ort.env.wasm.numThreads = 1;                         // no cross-origin isolation needed; one core each
  ort.env.wasm.wasmPaths = new URL("ort/", location.href).href;
  config = await (await fetch(CONFIG_URL)).json();
  detector = await ort.InferenceSession.create(config.detector.onnx);
  const sel = $("model");
  for (const name of Object.keys(config.models)) sel.add(new Option(name, name));
  await useModel(sel.value = params.get("model") || Object.keys(config.models)[0]);
  sel.onchange = () => useModel(sel.value);
  $("start").onclick = () => startCamera().catch((e) => ($("status").textContent = `camera: ${e.message}`));
  $("status").textContent = "ready";
  window.zooReady = true;
  if (params.get("autostart")) $("start").click();
}

// Hooks for the parity test: one still image through the whole pipeline; the live loop's numbers.
window.zooRunImage = async (url, model) => {
  if (model) await useModel(model);
  const img = new Image();
  img.src = url;
  await img.decode();
  return runImage(img, img.naturalWidth, img.naturalHeight);
};
window.zooStats = () => state.stats;

init().catch((e) => { $("status").textContent = `failed: ${e.message}`; window.zooError = String(e); });
