"""Frames per second of the Space's in-browser live view in headless Chromium on this machine, beside the
server-side path (zoo.track with the same model on the same clip), one run.

    python scripts/browser_fps.py [--models pipnet_mbv2_300w pipnet_mbv2_wflw] [--frames 150] [--json out.json]

Also times each model's network alone in the page, its fp32 graph against the int8 graph `zoo` makes
(onnxruntime-web runs both; the page uses fp32, the faster one there).

The clip: a 300-W test photo's face moving along a smooth path (zoo.track.moving_face_clip), fed to Chromium's
fake camera; the page runs YuNet and the model with onnxruntime-web (wasm, one thread) and tracks as its
live loop does. Needs ../shared (the photo), Playwright and /usr/bin/chromium.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import zoo  # noqa: E402
from space import browser  # noqa: E402
from zoo.bench import time_frames  # noqa: E402
from zoo.cpu import cpu_name, simd_summary  # noqa: E402
from zoo.track import Tracker, moving_face_clip  # noqa: E402

TIME_GRAPH = """async ([graph, size]) => {
  const s = await ort.InferenceSession.create(graph);
  const x = new ort.Tensor('float32', new Float32Array(3 * size * size), [1, 3, size, size]);
  await s.run({ input: x });
  const t0 = performance.now();
  for (let i = 0; i < 20; i++) await s.run({ input: x });
  return (performance.now() - t0) / 20; }"""
PHOTO = Path(__file__).resolve().parents[2] / "shared" / "data" / "300w" / "helen" / "testset" / "296814969_3.jpg"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=list(browser.BROWSER_MODELS))
    p.add_argument("--frames", type=int, default=150)
    p.add_argument("--chromium", default="/usr/bin/chromium")
    p.add_argument("--json", type=Path)
    a = p.parse_args(argv)
    from playwright.sync_api import sync_playwright

    img = zoo.load_image(PHOTO)
    face = zoo.load(a.models[0], detector="yunet")(img)[0]
    clip, _ = moving_face_clip(img, face.landmarks, n_frames=90, seed=0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        video = browser.write_y4m(root / "clip.y4m", clip)
        server, _, page_url = browser.serve_site(root / "site", a.models)
        with sync_playwright() as pw:
            ctx = pw.chromium.launch_persistent_context(
                str(root / "profile"), executable_path=a.chromium, headless=True,
                args=["--no-sandbox", "--disable-gpu", "--use-fake-ui-for-media-stream",
                      "--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={video}"])
            pg = ctx.new_page()
            pg.set_default_timeout(300_000)
            for name in a.models:
                pg.goto(f"{page_url}&model={name}&autostart=1")
                pg.wait_for_function("() => window.zooStats && window.zooStats().frames >= 20")   # warm-up
                f0, t0 = pg.evaluate("window.zooStats().frames"), time.perf_counter()
                pg.wait_for_function(f"() => window.zooStats().frames >= {a.frames + 20}")
                st = pg.evaluate("window.zooStats()")
                fps = (st["frames"] - f0) / (time.perf_counter() - t0)
                rows.append({"model": name, "path": "browser (onnxruntime-web wasm, 1 thread, headless Chromium)",
                             "fps": round(fps, 1), "last_frame_ms": {k: round(v, 1) for k, v in st["ms"].items()},
                             "detector_runs": st["detections"], "frames": st["frames"]})
            for name in a.models:                          # the network alone: fp32 and int8 graphs in wasm
                lm8 = zoo.load(name, backend="onnx-int8", detector=None, int8_guard=False)
                if lm8.backend != "onnx-int8":
                    continue
                int8 = root / "site" / "browser" / f"{name}-int8.onnx"
                int8.write_bytes(lm8.runner.path.read_bytes())
                size = lm8.preprocess.input_size
                for graph, label in ((f"/browser/{name}.onnx", "fp32"), (f"/browser/{int8.name}", "int8")):
                    ms = pg.evaluate(TIME_GRAPH, [graph, size])
                    rows.append({"model": name, "path": f"browser, network alone, {label} graph", "ms": round(ms, 1)})
            ctx.close()
        server.shutdown()
    for name in a.models:
        lm = zoo.load(name, backend="onnx", detector="yunet")
        tracker = Tracker(lm, max_faces=1)
        res = time_frames(tracker.update, list(clip) * 2, warmup=5)
        rows.append({"model": name, "path": "server (zoo.track, onnxruntime fp32, Python)", "fps": res["fps"],
                     "detector_runs": tracker.stats["detections"], "frames": res["frames"]})
    out = {"hardware": f"{cpu_name()} ({simd_summary()})", "command": "python scripts/browser_fps.py " +
           " ".join(argv if argv is not None else sys.argv[1:]), "rows": rows}
    for r in rows:
        what = f"{r['ms']:7.1f} ms" if "ms" in r else \
            f"{r['fps']:7.1f} FPS  detector on {r['detector_runs']} of {r['frames']}"
        print(f"{r['model']:18s} {r['path']:62s} {what}")
    if a.json:
        a.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
