"""Which models this Space can run, and a lazy, bounded cache of loaded ones.

Nothing here downloads: a model is *available* when its weights are published (pinned on the Hub, fetched
on first use) or already on this machine, looked up in zoo.hub's order (HF cache at the pinned revision,
bundled ``zoo/weights/<name>/``, ``$ZOO_HOME/<name>/``). With ``HF_HUB_OFFLINE=1`` a published entry
counts only when it is in the HF cache.

Loaded models are kept in an LRU cache bounded by count and by an estimate of their memory; each is warmed
up with one untimed call when loaded, and used under its own lock (a Landmarker keeps per-call timings,
so one instance serves one request at a time).
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

import zoo
from zoo import registry
from zoo.hub import local_weights
from zoo.registry import Entry, ZooError

log = logging.getLogger(__name__)

# Peers offered beside the zoo models (zoo.peers): dlib on its own HOG detector, PFLD-GhostOne when its file is here.
SPACE_PEERS = ("dlib", "pfld_ghostone", "mediapipe")
OWN_DETECTOR = ("dlib", "mediapipe")   # these find their own faces: the shared detector's boxes are not used
# onnxruntime first: on these CPUs it runs the zoo's networks about twice as fast as torch (`zoo bench`). int8
# needs calibration faces (../shared or $ZOO_CALIB_DATA); without them it runs the fp32 graph, with a warning.
BACKENDS = ("onnx", "onnx-int8", "torch")
DEFAULT_BACKEND = "onnx"


# ------------------------------------------------------------------------------------------ availability
def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def is_available(entry: Entry) -> bool:
    if local_weights(entry) is not None:
        return True
    return entry.published and bool(entry.hub.revision) and not _offline()


def available_models() -> list[str]:
    """Landmarker entries whose weights are published or found locally, then the usable peers."""
    names = [n for n in registry.list_models(kind="landmarker") if is_available(registry.get(n))]
    return names + available_space_peers()


def available_detectors() -> list[str]:
    """Detectors that run here without a download, best first (zoo.detectors.PREFERENCE, whose first
    available one is what the library's `detector="auto"` takes): the Space's default is the library's."""
    from zoo.detectors import PREFERENCE, available

    names = registry.list_models(kind="detector")
    order = [n for n in PREFERENCE if n in names] + [n for n in names if n not in PREFERENCE]
    return [n for n in order if available(n)]


def available_space_peers() -> list[str]:
    """The peers of SPACE_PEERS usable here now (zoo.peers.available_peers); none with SPACE_NO_PEERS set."""
    if os.environ.get("SPACE_NO_PEERS"):
        return []
    from zoo.peers import available_peers

    return [p for p in SPACE_PEERS if p in available_peers()]


def is_peer(name: str) -> bool:
    from zoo.peers import is_peer as zoo_is_peer

    return zoo_is_peer(name)


def uses_own_detector(name: str) -> bool:
    return name in OWN_DETECTOR


def scheme_name(name: str, cache: "ModelCache | None" = None) -> str:
    """A model's landmark scheme ("68", "98", ...): from the registry, or from the loaded peer."""
    if is_peer(name):
        return (cache or CACHE).get(name).obj.scheme.name
    return str(registry.get(name).scheme)


def cache_backend(name: str, backend: str) -> str:
    """The cache key's backend: peers run on their own runtime whatever the visitor picked."""
    return "peer" if is_peer(name) else backend


def torch_threads() -> int:
    """The per-model thread budget the app set at launch (zoo.cpu.configure)."""
    import torch

    return torch.get_num_threads()


# ------------------------------------------------------------------------------------------- the cache
def _model_bytes(obj: Any) -> int:
    """Rough resident size of a loaded model: tensors (+ the ONNX file, + dlib's model file)."""
    total = 0
    model = getattr(obj, "model", None)
    if model is not None and hasattr(model, "state_dict"):
        total += sum(t.numel() * t.element_size() for t in model.state_dict().values())
        runner = getattr(obj, "runner", None)
        if runner is not None and getattr(runner, "path", None) is not None and Path(runner.path).is_file():
            total += Path(runner.path).stat().st_size
    path = getattr(obj, "model_path", None)
    if path is not None and Path(path).is_file():
        total += Path(path).stat().st_size
    return total


def count_params(obj: Any) -> int | None:
    model = getattr(obj, "model", None)
    if model is None or not hasattr(model, "parameters"):
        return None
    return int(sum(p.numel() for p in model.parameters()))


@dataclass
class Slot:
    key: tuple[str, str]
    obj: Any
    nbytes: int
    load_ms: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_used: float = field(default_factory=time.monotonic)


class ModelCache:
    """LRU cache of ready landmarkers keyed by (name, backend), bounded by count and by bytes."""

    def __init__(self, max_models: int = 4, max_bytes: int | None = 1536 << 20, warmup: bool = True):
        self.max_models = max(1, int(max_models))
        self.max_bytes = max_bytes
        self.warmup = warmup
        self._slots: OrderedDict[tuple[str, str], Slot] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[tuple[str, str], threading.Lock] = {}
        self.loads = 0                              # how many times a model was (re)loaded: tests read it

    @classmethod
    def from_env(cls) -> "ModelCache":
        """SPACE_MAX_MODELS (default: every model the Space offers, so one comparison of all of them never
        evicts and reloads one mid-request) and SPACE_MAX_MODEL_MB (1536)."""
        mb = os.environ.get("SPACE_MAX_MODEL_MB", "1536")
        n = os.environ.get("SPACE_MAX_MODELS")
        return cls(max_models=int(n) if n else max(4, len(available_models())),
                   max_bytes=int(float(mb) * (1 << 20)) if float(mb) > 0 else None)

    def keys(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._slots)

    def clear(self) -> None:
        with self._lock:
            self._slots.clear()

    def peek(self, name: str, backend: str = "torch") -> Slot | None:
        with self._lock:
            return self._slots.get((name, cache_backend(name, backend)))

    def get(self, name: str, backend: str = "torch") -> Slot:
        """The slot of a ready model, loading (and warming up) it on first use."""
        key = (name, cache_backend(name, backend))
        with self._lock:
            slot = self._slots.get(key)
            if slot is not None:
                self._slots.move_to_end(key)
                slot.last_used = time.monotonic()
                return slot
            load_lock = self._loading.setdefault(key, threading.Lock())
        with load_lock:                              # one load per key, however many requests ask at once
            with self._lock:
                slot = self._slots.get(key)
                if slot is not None:
                    self._slots.move_to_end(key)
                    return slot
            t0 = time.perf_counter()
            obj = self._load(*key)
            slot = Slot(key, obj, _model_bytes(obj), (time.perf_counter() - t0) * 1000.0)
            with self._lock:
                self._slots[key] = slot
                self.loads += 1
                self._evict(keep=key)
        log.info("loaded %s/%s in %.0f ms (%.1f MB)", key[0], key[1], slot.load_ms, slot.nbytes / 2**20)
        return slot

    @contextmanager
    def use(self, name: str, backend: str = "torch") -> Iterator[Any]:
        """The ready model, held exclusively for the duration of the block."""
        slot = self.get(name, backend)
        with slot.lock:
            slot.last_used = time.monotonic()
            yield slot.obj

    def _evict(self, keep: tuple[str, str]) -> None:
        def over() -> bool:
            if len(self._slots) > self.max_models:
                return True
            return self.max_bytes is not None and sum(s.nbytes for s in self._slots.values()) > self.max_bytes

        while over() and len(self._slots) > 1:
            victim = next(k for k in self._slots if k != keep)
            self._slots.pop(victim)
            log.info("evicted %s/%s from the model cache", *victim)

    def _load(self, name: str, backend: str) -> Any:
        if is_peer(name):
            from zoo.peers import load_peer

            obj = load_peer(name)
        else:
            if backend not in BACKENDS:
                raise ZooError(f"backend must be one of {list(BACKENDS)}, not {backend!r}")
            entry = registry.get(name)
            if entry.kind != "landmarker":
                raise ZooError(f"{name!r} is a {entry.kind}, not a landmark model")
            obj = zoo.load(name, backend=backend, detector=None, threads=torch_threads())
        if self.warmup:                              # first calls pay for allocation/graph setup: not timed
            size = int(obj.entry.preprocess.input_size)
            dummy = np.full((size, size, 3), 127, np.uint8)
            obj(dummy, boxes=[[size * 0.2, size * 0.2, size * 0.8, size * 0.8]])
        return obj


class DetectorCache:
    """Loaded face detectors by name, each used under its own lock (OpenCV/torch objects, not re-entrant)."""

    def __init__(self) -> None:
        self._dets: dict[str, tuple[Any, threading.Lock]] = {}
        self._lock = threading.Lock()

    def _get(self, name: str) -> tuple[Any, threading.Lock]:
        with self._lock:
            hit = self._dets.get(name)
        if hit is not None:
            return hit
        from zoo.detectors import load_detector

        det = load_detector(name)
        det(np.full((240, 320, 3), 127, np.uint8))          # warm-up, untimed
        with self._lock:
            return self._dets.setdefault(name, (det, threading.Lock()))

    def detect(self, name: str, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
        """(boxes (K,4), scores (K,), milliseconds, rolls (K,)) on an RGB image; each face's roll (radians,
        from the detector's eye keypoints; 0 without) levels its crop as zoo.load(name)(image) does."""
        from zoo.detectors import detect_rolls

        det, lock = self._get(name)
        with lock:
            t0 = time.perf_counter()
            boxes, scores, rolls = detect_rolls(det, image, retry_rolled=True)     # as zoo.load(...)(image)
            ms = (time.perf_counter() - t0) * 1000.0
        return (np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(scores, np.float32).reshape(-1), ms,
                np.asarray(rolls, np.float64).reshape(-1))


CACHE = ModelCache.from_env()
DETECTORS = DetectorCache()
