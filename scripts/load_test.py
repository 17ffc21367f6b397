"""Load test of the Space: many /compare calls (several photos each) from concurrent gradio_client threads
against a launched app; latency, errors and the app's memory.

    python scripts/load_test.py                          # 50 concurrent comparisons of 3 photos each
    python scripts/load_test.py --requests 500 --photos 2 --repeats 1   # memory over 500 requests, 50 at a time
    python scripts/load_test.py --random-weights         # no trained weights here: seeded random-init test models
    python scripts/load_test.py --url http://127.0.0.1:7860/ --pid 1234   # an app that is already running

Reports latency p50/p95/max (seconds, from submit to result, queueing included), throughput, errors, and
the app process' resident memory (psutil when installed, else /proc/<pid>/status): idle, after the first
(model-loading) call, after warm-up (the first wave of --concurrency requests), at the end, and the peak.
"Growth after warm-up" = end - after warm-up: bounded memory keeps it near zero however many requests run.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
SHARED = Path(os.environ.get("SPACE_SHARED_DIR", ROOT.parent / "shared"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_bytes(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS so far) of a process and its children, in bytes (peak: VmHWM without psutil)."""
    try:
        import psutil

        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
        cur = sum(p.memory_info().rss for p in procs if p.is_running())
        return cur, cur                                   # peak: the sampler keeps the max of samples
    except ImportError:
        pass
    except Exception:
        return 0, 0
    fields: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) * 1024
    except OSError:
        return 0, 0
    return fields.get("VmRSS", 0), fields.get("VmHWM", 0)


class MemorySampler(threading.Thread):
    def __init__(self, pid: int, every: float = 0.1):
        super().__init__(daemon=True)
        self.pid, self.every, self.peak, self.stop_flag = pid, every, 0, threading.Event()

    def run(self) -> None:
        while not self.stop_flag.is_set():
            cur, hwm = rss_bytes(self.pid)
            self.peak = max(self.peak, cur, hwm)
            time.sleep(self.every)

    def stop(self) -> int:
        self.stop_flag.set()
        self.join(timeout=2)
        cur, hwm = rss_bytes(self.pid)
        return max(self.peak, cur, hwm)


def wait_up(url: str, proc: subprocess.Popen | None, timeout: float = 180) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"the app exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"the app did not answer at {url} within {timeout:.0f} s")


def pick_photos(tmp: Path, n: int, images: list[str] | None) -> tuple[list[Path], bool]:
    """(photos, whole_image): --image files, else 300-W common-test photos from ../shared (not the Space's
    examples, whose results the app keeps), else drawn faces."""
    if images:
        return [Path(p) for p in images], False
    helen = SHARED / "data" / "300w" / "helen" / "testset"
    if helen.is_dir():
        photos = sorted(helen.glob("*.jpg"))[5:5 + n]
        if len(photos) == n:
            return photos, False
    from space_fixtures import synthetic_photo

    return [synthetic_photo(tmp / f"drawn_{i}.png", size=320 + 16 * i)[0] for i in range(n)], True


def percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 2) if values else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", "-n", type=int, default=50, help="comparisons to send (default 50)")
    p.add_argument("--concurrency", "-c", type=int, default=50, help="in flight at once (default 50)")
    p.add_argument("--photos", type=int, default=3, help="photos per comparison (default 3)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per model and photo (the Space's default 3)")
    p.add_argument("--models", default="pipnet_mbv2_300w,pipnet_r18_300w")
    p.add_argument("--backend", default="torch", choices=["torch", "onnx"])
    p.add_argument("--image", action="append", help="photo to send (repeatable; default: 300-W test photos)")
    p.add_argument("--url", help="test an app that is already running instead of starting one")
    p.add_argument("--pid", type=int, help="with --url: the app's process id, for memory")
    p.add_argument("--random-weights", action="store_true",
                   help="start the app with ZOO_HOME holding seeded random-init weights of --models")
    p.add_argument("--http-timeout", type=float, default=600.0,
                   help="seconds one HTTP operation of a client may take (default 600)")
    p.add_argument("--json", help="also write the numbers here")
    a = p.parse_args(argv)
    models = [m for m in a.models.split(",") if m]
    conc = max(1, min(a.concurrency, a.requests))

    from gradio_client import Client, handle_file

    tmp = Path(tempfile.mkdtemp(prefix="space-load-"))
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1", SPACE_PRECOMPUTE="0")
    env.setdefault("SPACE_QUEUE_SIZE", str(max(64, conc + 8)))
    if a.random_weights:
        from space_fixtures import write_random_weights

        for i, m in enumerate(models):
            write_random_weights(tmp / "zoo_home", m, seed=i)
        env["ZOO_HOME"] = str(tmp / "zoo_home")
    proc = None
    if a.url:
        url, pid = a.url, a.pid
    else:
        port = free_port()
        url = f"http://127.0.0.1:{port}/"
        log = open(tmp / "app.log", "w")
        proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--host", "127.0.0.1", "--port", str(port)],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        pid = proc.pid
    try:
        t0 = time.time()
        wait_up(url, proc)
        startup = time.time() - t0
        photos, whole = pick_photos(tmp, a.photos, a.image)
        kwargs = dict(image=handle_file(str(photos[0])), more_images=[handle_file(str(x)) for x in photos[1:]] or None,
                      ground_truth=None, models=models, detector="haar", backend=a.backend, whole_image=whole,
                      repeats=a.repeats, api_name="/compare")

        first_client = Client(url, analytics_enabled=False, verbose=False, download_files=str(tmp / "dl"))
        rss_idle = rss_bytes(pid)[0] if pid else 0
        t = time.perf_counter()
        out = first_client.predict(**kwargs)              # loads and warms the models: reported apart
        first = time.perf_counter() - t
        report = json.loads(Path(out[0]).read_text())
        rss_first = rss_bytes(pid)[0] if pid else 0

        sampler = MemorySampler(pid) if pid else None
        if sampler:
            sampler.start()
        lock = threading.Lock()
        state = {"next": 0, "done": 0, "rss_warm": 0}
        series: list[tuple[int, float]] = []                 # (requests done, app RSS MB) every wave
        latencies: list[float] = []
        errors: list[str] = []
        start = threading.Barrier(conc)

        def worker(_: int) -> None:
            # httpx's default 5 s per operation is too short for an upload to a server busy with 50 requests
            client = Client(url, analytics_enabled=False, verbose=False, download_files=False,
                            httpx_kwargs={"timeout": a.http_timeout})
            start.wait()
            while True:
                with lock:
                    if state["next"] >= a.requests:
                        return
                    state["next"] += 1
                t1 = time.perf_counter()
                try:
                    client.predict(**kwargs)
                    ok = True
                except Exception as e:  # noqa: BLE001 - counted, not fatal
                    import traceback

                    ok = False
                    where = traceback.extract_tb(e.__traceback__)[-3:]
                    err = f"{type(e).__name__}: {e} (at {'; '.join(f'{f.name}:{f.lineno}' for f in where)})"
                with lock:
                    if ok:
                        latencies.append(time.perf_counter() - t1)
                    else:
                        errors.append(err)
                    state["done"] += 1
                    if state["done"] == conc and pid:          # the first wave is the warm-up
                        state["rss_warm"] = rss_bytes(pid)[0]
                    if state["done"] % conc == 0 and pid:
                        series.append((state["done"], round(rss_bytes(pid)[0] / 2**20, 1)))

        t_all = time.perf_counter()
        with ThreadPoolExecutor(conc) as pool:
            list(pool.map(worker, range(conc)))
        wall = time.perf_counter() - t_all
        rss_end = rss_bytes(pid)[0] if pid else 0
        peak = sampler.stop() if sampler else 0
        mb = lambda b: round(b / 2**20, 1)                          # noqa: E731
        result = {
            "requests": a.requests, "concurrency": conc, "ok": len(latencies), "errors": len(errors),
            "photos_per_request": len(photos), "photos": [x.name for x in photos], "whole_image": whole,
            "models": models, "backend": a.backend, "repeats": a.repeats,
            "startup_s": round(startup, 2), "first_call_s": round(first, 2),
            "p50_s": percentile(latencies, 50), "p95_s": percentile(latencies, 95),
            "max_s": round(max(latencies), 2) if latencies else None, "wall_s": round(wall, 2),
            "throughput_per_s": round(len(latencies) / wall, 3) if wall > 0 else None,
            "rss_idle_mb": mb(rss_idle), "rss_after_first_call_mb": mb(rss_first),
            "rss_after_warmup_mb": mb(state["rss_warm"]), "rss_end_mb": mb(rss_end), "peak_rss_mb": mb(peak),
            "growth_after_warmup_mb": mb(rss_end - state["rss_warm"]) if state["rss_warm"] else None,
            "rss_series_mb": series,
            "memory_source": "psutil" if _has_psutil() else "/proc/<pid>/status (VmRSS, VmHWM)",
            "queue_concurrency": int(env.get("SPACE_CONCURRENCY", "2")), "hardware": report.get("hardware_line"),
            "load_average_end": round(os.getloadavg()[0], 2), "first_errors": errors[:3],
        }
        print(f"{result['ok']}/{a.requests} ok, {len(errors)} errors · {conc} in flight · {len(photos)} photo(s) each "
              f"({', '.join(x.name for x in photos)}{', whole image' if whole else ''}) · models {', '.join(models)} "
              f"({a.backend}, {a.repeats} timed run(s))")
        print(f"latency p50 {result['p50_s']} s · p95 {result['p95_s']} s · max {result['max_s']} s · "
              f"wall {result['wall_s']} s · {result['throughput_per_s']} req/s")
        print(f"app memory: idle {result['rss_idle_mb']} MB · after first call {result['rss_after_first_call_mb']} MB · "
              f"after warm-up ({conc} requests) {result['rss_after_warmup_mb']} MB · end {result['rss_end_mb']} MB · "
              f"peak {result['peak_rss_mb']} MB · growth after warm-up {result['growth_after_warmup_mb']} MB "
              f"({result['memory_source']})")
        if len(series) > 1:
            print("app memory every", conc, "requests (done: MB):", ", ".join(f"{n}: {v}" for n, v in series))
        print(f"startup {result['startup_s']} s · first (model-loading) call {result['first_call_s']} s · queue "
              f"concurrency {result['queue_concurrency']} · load average at the end {result['load_average_end']} · "
              f"{result['hardware']}")
        for e in errors[:3]:
            print("error:", e)
        if a.json:
            Path(a.json).parent.mkdir(parents=True, exist_ok=True)
            Path(a.json).write_text(json.dumps(result, indent=1))
        return 1 if errors else 0
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def _has_psutil() -> bool:
    import importlib.util

    return importlib.util.find_spec("psutil") is not None


if __name__ == "__main__":
    raise SystemExit(main())
