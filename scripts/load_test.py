"""Load test of the Space: N concurrent /compare calls from gradio_client threads against a launched app.

    python scripts/load_test.py                          # starts `python app.py` on a free port, 20 requests
    python scripts/load_test.py --random-weights         # no trained weights yet: seeded random-init test models
    python scripts/load_test.py --url http://127.0.0.1:7860/ --pid 1234   # an app that is already running

Reports latency p50/p95/max (seconds, from submit to result, queueing included), throughput, errors, and
the app process' peak resident memory (psutil when installed, else /proc/<pid>/status VmHWM/VmRSS).
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_bytes(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS) of a process and its children, in bytes."""
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
    def __init__(self, pid: int, every: float = 0.05):
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


def pick_input(tmp: Path, image: str | None) -> tuple[Path, bool]:
    """(photo, whole_image): --image, else a 300-W test photo from ../shared, else the drawn face."""
    if image:
        return Path(image), False
    from space_fixtures import real_300w_sample, synthetic_photo

    sample = real_300w_sample()
    if sample is not None:
        return sample[0], False
    return synthetic_photo(tmp / "drawn.png")[0], True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", "-n", type=int, default=20)
    p.add_argument("--models", default="pipnet_mbv2_300w,pipnet_r18_300w")
    p.add_argument("--backend", default="torch", choices=["torch", "onnx"])
    p.add_argument("--image", help="photo to send (default: a 300-W test photo, else a drawn face)")
    p.add_argument("--url", help="test an app that is already running instead of starting one")
    p.add_argument("--pid", type=int, help="with --url: the app's process id, for memory")
    p.add_argument("--random-weights", action="store_true",
                   help="start the app with ZOO_HOME holding seeded random-init weights of --models")
    p.add_argument("--json", help="also write the numbers here")
    a = p.parse_args(argv)
    models = [m for m in a.models.split(",") if m]

    from gradio_client import Client, handle_file

    tmp = Path(tempfile.mkdtemp(prefix="space-load-"))
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1")
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
        photo, whole = pick_input(tmp, a.image)
        args = (handle_file(str(photo)), None, None, models, "haar", a.backend, whole)

        def call(client: Client) -> float:
            t = time.perf_counter()
            client.predict(*args, api_name="/compare")
            return time.perf_counter() - t

        first_client = Client(url, analytics_enabled=False, verbose=False, download_files=str(tmp / "dl"))
        rss_idle = rss_bytes(pid)[0] if pid else 0
        first = call(first_client)                       # loads and warms the models: reported apart
        rss_warm = rss_bytes(pid)[0] if pid else 0
        clients = [Client(url, analytics_enabled=False, verbose=False, download_files=str(tmp / "dl"))
                   for _ in range(a.requests)]
        sampler = MemorySampler(pid) if pid else None
        if sampler:
            sampler.start()
        errors: list[str] = []
        start = threading.Barrier(a.requests)

        def one(c: Client) -> float | None:
            start.wait()
            try:
                return call(c)
            except Exception as e:                       # counted, not fatal
                errors.append(f"{type(e).__name__}: {e}")
                return None

        t_all = time.perf_counter()
        with ThreadPoolExecutor(a.requests) as pool:
            lat = [x for x in pool.map(one, clients) if x is not None]
        wall = time.perf_counter() - t_all
        peak = sampler.stop() if sampler else 0
        hw = json.loads((next((tmp / "dl").rglob("landmarks.json"))).read_text()).get("hardware_line", "?") \
            if any((tmp / "dl").rglob("landmarks.json")) else "?"
        result = {
            "requests": a.requests, "ok": len(lat), "errors": len(errors), "models": models, "backend": a.backend,
            "photo": photo.name, "whole_image": whole, "startup_s": round(startup, 2), "first_call_s": round(first, 2),
            "p50_s": round(float(np.percentile(lat, 50)), 2) if lat else None,
            "p95_s": round(float(np.percentile(lat, 95)), 2) if lat else None,
            "max_s": round(max(lat), 2) if lat else None, "wall_s": round(wall, 2),
            "throughput_per_s": round(len(lat) / wall, 3) if wall > 0 else None,
            "rss_idle_mb": round(rss_idle / 2**20, 1), "rss_after_warmup_mb": round(rss_warm / 2**20, 1),
            "peak_rss_mb": round(peak / 2**20, 1),
            "memory_source": "psutil" if _has_psutil() else "/proc/<pid>/status (VmRSS, VmHWM)",
            "concurrency_limit": int(env.get("SPACE_CONCURRENCY", "2")), "hardware": hw,
            "first_errors": errors[:3],
        }
        print(f"{result['ok']}/{a.requests} ok, {len(errors)} errors · models {', '.join(models)} ({a.backend}) on "
              f"{photo.name}{' (whole image)' if whole else ''}")
        print(f"latency p50 {result['p50_s']} s · p95 {result['p95_s']} s · max {result['max_s']} s · "
              f"wall {result['wall_s']} s · {result['throughput_per_s']} req/s")
        print(f"app memory: idle {result['rss_idle_mb']} MB · after warm-up {result['rss_after_warmup_mb']} MB · "
              f"peak {result['peak_rss_mb']} MB ({result['memory_source']})")
        print(f"startup {result['startup_s']} s · first (model-loading) call {result['first_call_s']} s · "
              f"concurrency limit {result['concurrency_limit']} · {hw}")
        for e in errors[:3]:
            print("error:", e)
        if a.json:
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
