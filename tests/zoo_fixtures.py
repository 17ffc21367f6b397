"""Fixtures for tests that need loadable zoo weights without trained ones: seeded random weights written
where zoo.load looks ($ZOO_HOME), with the landmarkers' pins lifted for the test."""
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import zoo
from zoo.hub import local_dir
from zoo.nets import build_model


def write_random_weights(name: str) -> Path:
    """Seeded random weights for a zoo entry, where zoo.load looks ($ZOO_HOME/NAME/model.safetensors)."""
    e = zoo.card(name)
    torch.manual_seed(0)
    model = build_model(e.arch, zoo.get_scheme(e.scheme).num_points, **dict(e.arch_args))
    if hasattr(model, "set_mean_face"):
        model.set_mean_face(np.random.default_rng(0).random((model.num_points, 2)) * 0.8 + 0.1)
    path = local_dir() / name / "model.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


@pytest.fixture
def random_zoo(zoo_home, tmp_path, monkeypatch):
    """conftest's empty ZOO_HOME, with landmarker pins lifted and bundled weights hidden."""
    monkeypatch.setattr(zoo.registry, "_ENTRIES", {k: v for k, v in zoo.registry.entries().items()})
    for name, e in list(zoo.registry._ENTRIES.items()):   # landmarkers: these tests bring their own weights
        if e.kind == "landmarker":
            zoo.registry._ENTRIES[name] = replace(e, hub=replace(e.hub, revision=None, sha256=None))
    monkeypatch.setattr(zoo.files, "BUNDLED_DIR", tmp_path / "no_bundle")
    return zoo_home


def face_image() -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)


