"""The zoo's registry: one entry per (model, dataset), stored as data in registry.json.

Each weight carries its own preprocessing (as timm's per-weight PretrainedCfg does); training's publish
step rewrites an entry's status, sha256 and metrics, so every number here comes from a command.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

REGISTRY_FILE = Path(__file__).with_name("registry.json")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ZooError(Exception):
    """A user-facing error: what went wrong and what to do about it."""


@dataclass(frozen=True)
class Preprocess:
    input_size: int = 256
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    # Crop from a face box given by the caller: (dx, dy, sx, sy), see zoo.crop.detector_crop_box; PIPNet
    # demo's rule. Zoo detectors carry their own measured rule. Ground-truth crops (training, evaluation):
    # the landmark box scaled by gt_box_scale.
    box_rule: tuple[float, float, float, float] = (0.0, 0.1, 1.2, 1.0)
    gt_box_scale: float = 1.1


@dataclass(frozen=True)
class Confidence:
    """Per-point confidence: sigmoid(weights . evidence + bias) of the decode's raw evidence per point (`features`:
    the score-map or heatmap peak; for PIPNet also the log scatter of its neighbour candidates), fitted on faces
    the weight never trained on (`fitted_on`) to predict whether a point lies within `tolerance` x the dataset's
    NME normaliser of the truth (`python -m train.confidence`). Valid only for the weight file `sha256`."""
    weights: tuple[float, ...]
    bias: float
    tolerance: float
    sha256: str
    features: tuple[str, ...] = ("peak",)
    fitted_on: str = ""
    command: str = ""
    measured: dict[str, Any] = field(default_factory=dict)   # AUC and calibration error on test faces

    def __post_init__(self) -> None:
        object.__setattr__(self, "weights", tuple(float(v) for v in self.weights))
        object.__setattr__(self, "features", tuple(self.features))

    def __call__(self, evidence: np.ndarray) -> np.ndarray:
        """(..., N, F) evidence -> (..., N) probabilities in [0, 1]."""
        ev = np.asarray(evidence, np.float64)
        if ev.shape[-1] != len(self.weights):
            raise ValueError(f"confidence expects {len(self.weights)} evidence features {self.features}, "
                             f"got {ev.shape[-1]}: the calibration was fitted for another decode")
        return (1.0 / (1.0 + np.exp(-(ev @ np.asarray(self.weights) + self.bias)))).astype(np.float32)


@dataclass(frozen=True)
class HubRef:
    repo_id: str
    filename: str = "model.safetensors"
    revision: str | None = None      # a pinned commit; None until the weights are pushed
    sha256: str | None = None        # of `filename`; loading refuses any other file


@dataclass(frozen=True)
class Entry:
    name: str
    kind: str                        # "landmarker" or "detector"
    arch: str
    arch_args: dict[str, Any]
    hub: HubRef
    dataset: str | None = None
    scheme: str | None = None
    preprocess: Preprocess = field(default_factory=Preprocess)
    status: str = "recipe-only"      # "published" once weights exist and are pinned by sha256
    license: str = "other"
    params: int | None = None
    metrics: dict[str, Any] = field(default_factory=dict)   # measured here; with "command" that measured them
    paper: dict[str, Any] = field(default_factory=dict)     # figures reported by the paper, for comparison
    # The authors' released checkpoint this entry converts from (`python -m zoo convert`): {"file": its path in
    # their release, "meanface": their mean-face file, "source": where that is stated}; empty if none.
    release: dict[str, Any] = field(default_factory=dict)
    confidence: Confidence | None = None
    notes: str = ""

    @property
    def published(self) -> bool:
        return self.status == "published"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Entry":
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        d["hub"] = HubRef(**d["hub"])
        pre = dict(d.get("preprocess") or {})
        for k in ("mean", "std", "box_rule"):
            if k in pre:
                pre[k] = tuple(pre[k])
        d["preprocess"] = Preprocess(**pre)
        if d.get("confidence"):
            d["confidence"] = Confidence(**d["confidence"])
        return cls(**d)


def _read(path: Path | None = None) -> dict[str, Entry]:
    raw = json.loads((path or REGISTRY_FILE).read_text())
    return {d["name"]: Entry.from_dict(d) for d in raw["entries"]}


_ENTRIES: dict[str, Entry] | None = None


def entries() -> dict[str, Entry]:
    global _ENTRIES
    if _ENTRIES is None:
        _ENTRIES = _read()
    return _ENTRIES


def reload() -> None:
    global _ENTRIES
    _ENTRIES = None


def get(name: str) -> Entry:
    es = entries()
    if name not in es:
        close = [n for n in es if name.split("_")[0] in n][:5]
        raise ZooError(f"no zoo entry named {name!r}" + (f"; did you mean one of {close}?" if close else
                                                           "; `python -m zoo list` shows them"))
    return es[name]


def list_models(dataset: str | None = None, backbone: str | None = None, arch: str | None = None,
                published: bool | None = None, kind: str = "landmarker") -> list[str]:
    """Names of registry entries, filtered. `kind="detector"` lists detectors; `kind=None` lists all."""
    out = []
    for e in entries().values():
        if kind is not None and e.kind != kind:
            continue
        if dataset is not None and e.dataset != dataset.lower():
            continue
        if backbone is not None and backbone not in (e.arch_args.get("backbone", "mobilenet_v2"), e.name.split("_")[1]):
            continue
        if arch is not None and e.arch != arch:
            continue
        if published is not None and e.published != published:
            continue
        out.append(e.name)
    return out


def update_entry(name: str, path: Path | None = None, **changes: Any) -> Entry:
    """Rewrite one entry in registry.json (used by the publish step; keeps the file's order)."""
    path = path or REGISTRY_FILE
    raw = json.loads(path.read_text())
    for i, d in enumerate(raw["entries"]):
        if d["name"] == name:
            entry = Entry.from_dict(d)
            if "hub" in changes and isinstance(changes["hub"], dict):
                changes["hub"] = replace(entry.hub, **changes["hub"])
            entry = replace(entry, **changes)
            raw["entries"][i] = entry.to_dict()
            path.write_text(json.dumps(raw, indent=1) + "\n")
            reload()
            return entry
    raise ZooError(f"no zoo entry named {name!r} in {path}")


def add_variant(base: str, tag: str, path: Path | None = None) -> Entry:
    """A tagged variant `base.tag` (timm's name.tag): the same architecture, preprocessing and dataset as `base`,
    other weights (its own Hub repo `ORG/base.tag`). Added after `base` in registry.json, unpublished; an
    existing variant is returned as it is."""
    path = path or REGISTRY_FILE
    name = f"{base}.{tag}"
    raw = json.loads(path.read_text())
    names = [d["name"] for d in raw["entries"]]
    if name in names:
        return Entry.from_dict(raw["entries"][names.index(name)])
    if base not in names:
        raise ZooError(f"no zoo entry named {base!r} in {path}")
    d = json.loads(json.dumps(raw["entries"][names.index(base)]))
    d.update(name=name, status="recipe-only", metrics={}, params=None)
    d["hub"].update(repo_id=f"{d['hub']['repo_id']}.{tag}", sha256=None, revision=None)
    d.pop("release", None)                 # the authors' checkpoint is the base entry's, not the variant's
    raw["entries"].insert(names.index(base) + 1, d)
    path.write_text(json.dumps(raw, indent=1) + "\n")
    reload()
    return Entry.from_dict(d)


def release_command(entry: Entry) -> str:
    """How to make ``entry``'s weights from the authors' release, or "" when they released none for it."""
    rel = entry.release
    if not rel.get("file"):
        return ""
    return (f"convert the authors' release with `python -m zoo convert {entry.name} --from PATH/"
            f"{Path(rel['file']).name} --meanface PATH/{Path(rel['meanface']).name}` (their "
            f"{rel['file']} and {rel['meanface']}, from github.com/jhb86253817/PIPNet)")


def describe(entry: Entry) -> str:
    """An entry as a short card for the terminal (`python -m zoo info`): what it is, how to load it, what it
    scored and with which command, where its weights come from."""
    e = entry
    pct = lambda v: f"{100 * v:.2f}%" if isinstance(v, (int, float)) else str(v)
    what = {"landmarker": f"{e.arch} ({e.arch_args.get('backbone', 'mobilenet_v2')}) landmarker, "
                          f"{e.scheme}-point scheme, trained on {e.dataset}",
            "detector": f"{e.arch} face detector"}.get(e.kind, e.kind)
    lines = [f"{e.name}: {what}", f"  status    {e.status}" + (f", {e.params / 1e6:.1f} M parameters" if e.params else ""),
             f"  licence   {e.license}"]
    if e.kind == "landmarker":
        p = e.preprocess
        lines += [f"  load      zoo.load({e.name!r})",
                  f"  input     {p.input_size}x{p.input_size} RGB, mean {list(p.mean)}, std {list(p.std)}; "
                  f"ground-truth crop: landmark box x {p.gt_box_scale}"]
    m = e.metrics
    if "nme" in m:
        lines.append(f"  NME       {pct(m['nme'])} on {m.get('dataset')} {m.get('split')} ({m.get('n')} faces, "
                     f"ground-truth crops); FR {pct(m.get('fr'))}, AUC {m.get('auc', float('nan')):.3f}")
        if "nme_int8" in m:
            lines.append(f"  int8      {pct(m['nme_int8'])} (backend='onnx-int8')")
        if m.get("command"):
            lines.append(f"  measured  {m['command']}")
    if e.paper:
        figs = ", ".join(f"{k.removeprefix('nme_')} {v}" for k, v in e.paper.items() if k.startswith("nme"))
        lines.append(f"  paper     NME {figs} ({e.paper.get('source', '')})")
    pin = e.hub.sha256[:12] + "…" if e.hub.sha256 else "none"
    lines.append(f"  weights   {e.hub.repo_id}/{e.hub.filename}, revision {e.hub.revision or 'unpinned'}, "
                 f"sha256 {pin}")
    c = e.confidence
    if c is not None:
        valid = "" if c.sha256 == e.hub.sha256 else " (fitted for other weights: Face.scores stays None)"
        tests = "; ".join(f"{k}: AUC {v['auc']:.2f}, ECE {v['ece']:.3f}" for k, v in c.measured.items()
                          if not k.startswith("fit"))
        lines.append(f"  scores    Face.scores from {' + '.join(c.features)}, fitted on {c.fitted_on} to predict a point "
                     f"within {c.tolerance:g} x inter-ocular{valid}" + (f"; {tests}" if tests else ""))
    if e.release.get("file"):
        lines.append(f"  release   {release_command(e)}")
    if e.notes:
        lines.append(f"  notes     {e.notes}")
    return "\n".join(lines)
