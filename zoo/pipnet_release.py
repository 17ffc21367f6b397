"""The PIPNet authors' released checkpoints (github.com/jhb86253817/PIPNet) as zoo entries.

``python -m zoo convert pipnet_r18_wflw --from epoch59.pth --meanface meanface.txt`` reads their plain
``state_dict`` (torch.load(weights_only=True), via zoo.convert.read_checkpoint), maps it onto the zoo's PIPNet,
rebuilds the neighbour indices from their mean face as their ``get_meanface`` does (the ``num_nb`` nearest
other landmarks by Euclidean distance), keeps their neighbour-merging weights (``padded_merge_matrix``) and
writes a model folder (model.safetensors, config.json, README.md) to ``local_dir()/NAME/`` or ``--out``.

Their layout: torchvision's key names for the trunk, without a prefix (ResNet: ``conv1``, ``bn1``,
``layer1..4``, no ``fc``; MobileNetV2: ``features.0..18``, no ``classifier``), then the heads ``cls_layer``,
``x_layer``, ``y_layer``, ``nb_x_layer``, ``nb_y_layer``. Ours nests the trunk under ``backbone.``.

Trust: the registry pins sha256 only for the zoo's own files. A conversion writes a record into its
config.json (``converted``: source file name and sha256, mean face sha256, and the sha256 of the
model.safetensors written); ``zoo.load`` checks the file against that record (zoo.convert.check_record)
and refuses a file that no longer matches it.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .convert import read_checkpoint
from .files import CONFIG_NAME, RECORD_KEY, WEIGHTS_NAME, local_dir, sha256_file
from .registry import Entry, ZooError, get
from .schemes import get_scheme

logger = logging.getLogger(__name__)

HEADS = ("cls_layer", "x_layer", "y_layer", "nb_x_layer", "nb_y_layer")
OUR_BUFFERS = ("mean_face", "nb_idx", "merge")          # rebuilt from the mean face, not in their file
TRUNK_CHANNELS = {512: "resnet18/34", 2048: "resnet50/101", 1280: "mobilenet_v2"}


@dataclass(frozen=True)
class Conversion:
    folder: Path
    weights_sha256: str
    source_sha256: str
    stored_with_pin: bool        # the entry pins weights of its own: zoo.load(name) keeps loading those


def zoo_key(authors_key: str) -> str:
    """Our state_dict key for one of the authors' keys: heads keep their names, the trunk goes under backbone."""
    return authors_key if authors_key.split(".", 1)[0] in HEADS else "backbone." + authors_key


def read_meanface(path: Path, num_points: int | None = None, name: str = "") -> np.ndarray:
    """The (N, 2) mean face of an authors' meanface.txt (one line: x1 y1 x2 y2 ..., crop-normalised)."""
    path = Path(path)
    if not path.is_file():
        raise ZooError(f"mean face {path} does not exist (the authors ship it as data/<DATASET>/meanface.txt)")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        values = np.array([float(v) for v in (lines[0].split() if lines else [])], dtype=np.float64)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ZooError(f"{path}: not a mean-face file (one line of numbers x1 y1 x2 y2 ...): {exc}") from None
    if values.size == 0 or values.size % 2:
        raise ZooError(f"{path}: not a mean-face file: {values.size} numbers on its first line, expected x y pairs")
    if not np.isfinite(values).all():
        raise ZooError(f"{path}: the mean face holds non-finite numbers")
    points = values.reshape(-1, 2)
    if num_points is not None and len(points) != num_points:
        raise ZooError(f"{path}: {len(points)} points, but {name or 'this entry'} predicts {num_points}: "
                       "use the mean face of the dataset the checkpoint was trained on")
    return points


def warn_on_ties(mean_face: np.ndarray, num_nb: int, path: Path) -> None:
    """Equal distances make the neighbour order depend on the sort used; their numpy may have chosen otherwise."""
    d = np.sum((mean_face[:, None, :] - mean_face[None, :, :]) ** 2, axis=-1)
    np.fill_diagonal(d, np.inf)
    near = np.sort(d, axis=1)[:, :num_nb + 1]
    rows = np.nonzero((np.diff(near, axis=1) == 0).any(axis=1))[0]
    if len(rows):
        logger.warning("%s: landmarks %s have neighbours at equal distances; their neighbour order is ambiguous",
                       path, rows.tolist()[:8])


def _describe(state: dict[str, torch.Tensor]) -> str:
    """What a checkpoint looks like, from its classification head: points and trunk width."""
    cls = state.get("cls_layer.weight")
    if cls is None or cls.ndim != 4:
        return "no cls_layer.weight: not a PIPNet checkpoint in the authors' layout"
    nb = state.get("nb_x_layer.weight")
    num_nb = nb.shape[0] // cls.shape[0] if nb is not None and cls.shape[0] else "?"
    return (f"it holds a {cls.shape[0]}-point PIPNet with {num_nb} neighbours on a "
            f"{TRUNK_CHANNELS.get(cls.shape[1], f'{cls.shape[1]}-channel')} trunk")


def map_state_dict(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], src: Path,
                   entry: Entry) -> dict[str, torch.Tensor]:
    """The authors' state_dict under our keys, checked key by key and shape by shape against ``expected``."""
    if state and all(k.startswith("module.") for k in state):       # saved from a DataParallel wrapper
        state = {k.removeprefix("module."): v for k, v in state.items()}
    mapped = {zoo_key(k): v for k, v in state.items()}
    # BatchNorm's counters are absent from checkpoints of torch < 0.4.1; they do not change the outputs.
    missing = [k for k in expected if k not in mapped and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if zoo_key(k) not in expected]
    shapes = [f"{k!r} is {list(state[k].shape)}, expected {list(expected[zoo_key(k)].shape)}"
              for k in state if zoo_key(k) in expected and state[k].shape != expected[zoo_key(k)].shape]
    if missing or unexpected or shapes:
        backbone, n = entry.arch_args.get("backbone"), get_scheme(entry.scheme).num_points
        problems = ([f"missing key {k.removeprefix('backbone.')!r}" for k in missing[:3]]
                    + [f"unexpected key {k!r}" for k in unexpected[:3]] + shapes[:3])
        counts = f"{len(missing)} missing, {len(unexpected)} unexpected, {len(shapes)} of the wrong shape"
        raise ZooError(f"{src}: not the authors' layout for {entry.name} ({backbone}, {n} points, "
                       f"{entry.arch_args.get('num_nb', 10)} neighbours): {'; '.join(problems)} ({counts}); "
                       f"{_describe(state)}")
    out = {k: torch.zeros((), dtype=torch.long) for k in expected if k not in mapped}   # the counters only
    for k, v in mapped.items():
        out[k] = v.float() if v.is_floating_point() else v.to(expected[k].dtype)
    return out


def card_body(entry: Entry, src: Path, source_sha: str, meanface: Path, meanface_sha: str) -> str:
    rel = entry.release
    lines = ["## Provenance", "",
             f"Converted from the authors' release: `{src.name}` (sha256 `{source_sha}`)"
             + (f", published by the PIPNet authors as `{rel['file']}`" if rel.get("file") else "") + ".",
             f"Mean face: `{meanface.name}` (sha256 `{meanface_sha}`); neighbour indices and merging weights "
             "were rebuilt from it as the authors' code derives them.", "",
             "Made with:", "", "```bash",
             f"python -m zoo convert {entry.name} --from {src.name} --meanface {meanface.name}", "```", ""]
    figures = {k: v for k, v in entry.paper.items() if isinstance(v, (int, float))}
    if figures:
        lines += ["## The paper's figures (not measured here)", "",
                  ", ".join(f"{k} {v}%" for k, v in figures.items())
                  + f" ({entry.paper.get('source', 'paper')}; {entry.paper.get('quoted_from', '')})".replace("; )", ")"),
                  ""]
    return "\n".join(lines)


def convert_release(name: str, src: Path, meanface: Path, out: Path | None = None) -> Conversion:
    """Convert the authors' checkpoint ``src`` for zoo entry ``name`` into a model folder; see the module doc."""
    from .landmarker import Landmarker
    from .nets import build_model
    from .nets.pipnet import padded_merge_matrix

    entry = get(name)
    if entry.arch != "pipnet":
        raise ZooError(f"{name} is a {entry.arch} entry; only PIPNet entries convert from the authors' release")
    src, meanface = Path(src), Path(meanface)
    num_points = get_scheme(entry.scheme).num_points
    mean = read_meanface(meanface, num_points, name)      # before the (large) checkpoint: fail fast
    try:
        state = read_checkpoint(src)
    except FileNotFoundError:
        raise ZooError(f"checkpoint {src} does not exist") from None
    except ValueError as exc:
        raise ZooError(str(exc)) from None

    model = build_model(entry.arch, num_points, **dict(entry.arch_args))
    expected = {k: v for k, v in model.state_dict().items() if k not in OUR_BUFFERS}
    model.load_state_dict(map_state_dict(state, expected, src, entry), strict=False, assign=True)   # no copy
    warn_on_ties(mean, model.num_nb, meanface)
    model.set_mean_face(mean)
    try:
        model.set_merge(padded_merge_matrix(model.nb_idx))
    except ValueError as exc:
        raise ZooError(f"{meanface}: {exc}") from None

    folder = Path(out) if out else local_dir() / entry.name
    source_sha, meanface_sha = sha256_file(src), sha256_file(meanface)
    Landmarker(model, entry, detector=None).save_pretrained(
        folder, body=card_body(entry, src, source_sha, meanface, meanface_sha))
    weights_sha = sha256_file(folder / WEIGHTS_NAME)
    config_path = folder / CONFIG_NAME
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config[RECORD_KEY] = {
        "from": "the authors' release", "entry": entry.name, "release_file": entry.release.get("file"),
        "source_file": src.name, "source_sha256": source_sha, "meanface_file": meanface.name,
        "meanface_sha256": meanface_sha, "weights_sha256": weights_sha,
        "command": f"python -m zoo convert {entry.name} --from {src.name} --meanface {meanface.name}"}
    tmp = config_path.with_name(config_path.name + ".tmp")
    tmp.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, config_path)
    logger.info("converted %s (%s) -> %s", src, source_sha[:12], folder)
    return Conversion(folder, weights_sha, source_sha, stored_with_pin=bool(entry.hub.sha256))
