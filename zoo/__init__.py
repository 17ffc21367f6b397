"""A facial-landmark model zoo: PIPNet and MobileFAN weights, loaded in one line.

    import zoo
    lm = zoo.load("pipnet_r18_300w")
    faces = lm("photo.jpg")
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from .images import load_image
from .landmarker import Face, Landmarker
from .registry import Entry, ZooError, get, list_models
from .schemes import get_scheme

__all__ = ["load", "load_folder", "from_pretrained", "list_models", "card", "push", "Landmarker", "Face",
           "ZooError", "load_image", "get_scheme"]
__version__ = "0.1.0"
log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())
BACKENDS = ("onnx", "onnx-int8")    # besides "torch"


def card(name: str) -> Entry:
    """The registry entry of `name`: architecture, preprocessing, Hub location, metrics, licence, status."""
    return get(name)


def _build(entry: Entry, state: dict, backend: str, detector: Any, weights: Path, int8_guard: bool = True,
           threads: int | None = None) -> Landmarker:
    from .nets import build_model

    model = build_model(entry.arch, get_scheme(entry.scheme).num_points, **dict(entry.arch_args))
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}   # fp16 files run in fp32
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ZooError(f"weights of {entry.name} do not match {entry.arch}: missing {missing[:4]}, "
                       f"unexpected {unexpected[:4]}")
    model.eval()
    if detector == "auto":
        from .detectors import best_detector
        detector = best_detector()
    if backend == "torch":
        return Landmarker(model, entry, detector)
    if backend in BACKENDS:
        from .cpu import default_threads
        from .files import local_dir, sha256_file
        from .onnx_backend import OnnxRunner, export_onnx, int8_graph, int8_refusal

        # Keyed by the weights' hash: new weights never run with a stale exported graph.
        path = local_dir() / entry.name / f"model-{sha256_file(weights)[:16]}.onnx"
        if not path.exists():
            export_onnx(model, path, entry.preprocess.input_size)
        name = "onnx"
        if backend == "onnx-int8":
            why = int8_refusal(entry) if int8_guard else None
            int8 = None if why else int8_graph(entry, path)
            if int8 is None:
                why = why or (f"no training faces to calibrate on (looked for {entry.dataset} training folders "
                              "in $ZOO_CALIB_DATA and ../shared/data beside the checkout)")
                log.warning("%s: running the fp32 ONNX graph, not int8: %s", entry.name, why)
            else:
                path, name = int8, "onnx-int8"
        lm = Landmarker(model, entry, detector, runner=OnnxRunner(path, threads=threads or default_threads()))
        lm.backend = name
        return lm
    raise ZooError(f"backend must be one of {['torch', *BACKENDS]}, not {backend!r}")


def load(name: str, backend: str = "torch", detector: Any = "auto", int8_guard: bool = True,
         threads: int | None = None) -> Landmarker:
    """A ready Landmarker for a registry entry (weights: HF cache/Hub at the pinned revision, then the
    copy bundled in this package, then ~/.cache/facezoo; sha256-checked).

    backend: "torch", "onnx" (fp32 onnxruntime) or "onnx-int8" (static int8; refused, with a warning, for an
    entry whose measured int8 NME is more than 0.05 points worse, unless int8_guard=False, as when measuring
    it). detector: "auto" (the best detector on this machine: YuNet, FaceBoxesV2, then Haar; logged), a
    detector name to pin one, a detector object, or None (boxes must be given). threads: onnxruntime's intra-op
    threads (default: the usable cores; torch's are process-wide: zoo.cpu.configure)."""
    from safetensors.torch import load_file

    from .hub import resolve_weights

    entry = get(name)
    if entry.kind != "landmarker":
        raise ZooError(f"{name!r} is a {entry.kind}; load it with zoo.detectors.load_detector")
    if isinstance(detector, str) and detector != "auto":
        from .detectors import detector_entry
        detector_entry(detector)        # an unknown name fails now, listing the detectors, before any download
    path = resolve_weights(entry)
    return _build(entry, load_file(str(path)), backend, detector, path, int8_guard, threads)


def load_folder(folder: str | Path, backend: str = "torch", detector: Any = "auto") -> Landmarker:
    """A Landmarker from a Hub-style folder (config.json + model.safetensors), e.g. a training output."""
    from .hub import load_folder as read_folder

    config, state = read_folder(Path(folder))
    entry = entry_from_config(config)
    return _build(entry, state, backend, detector, Path(folder) / "model.safetensors")


def from_pretrained(repo_id: str, revision: str | None = None, token: str | None = None,
                    backend: str = "torch", detector: Any = "auto") -> Landmarker:
    """A Landmarker from any Hub repo that `zoo push` wrote."""
    from .hub import snapshot

    return load_folder(snapshot(repo_id, revision=revision, token=token), backend, detector)


def entry_from_config(config: dict[str, Any]) -> Entry:
    """A registry-like entry from a folder's config.json (the config is the entry minus Hub/metrics)."""
    d = dict(config)
    d.setdefault("kind", "landmarker")
    d.setdefault("hub", {"repo_id": d.get("name", "local")})
    try:
        return Entry.from_dict(d)
    except (KeyError, TypeError) as e:
        raise ZooError(f"config.json is not a zoo config ({e})") from None


def push(folder: str | Path, repo_id: str, token: str | None = None, revision: str | None = None,
         tag: str | None = None, private: bool = False) -> str:
    """Publish a Hub-ready folder (model.safetensors, config.json, README.md); returns the commit sha."""
    from .hub import push as hub_push

    return hub_push(Path(folder), repo_id, token=token, revision=revision, tag=tag, private=private)
