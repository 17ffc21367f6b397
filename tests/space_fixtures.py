"""Fixtures for the Space's tests (a plain module: test files import from it).

`space_models` makes two 68-point models runnable without trained weights: it points ZOO_HOME at a temp
folder and writes seeded random-init weights (with a schematic mean face) for pipnet_mbv2_300w and
pipnet_r18_300w there. Their predictions are meaningless, but the whole pipeline runs. Where real weights
already resolve locally (bundled, HF cache) they are used instead: bundled weights come before ZOO_HOME.

`space_app` launches the Gradio app in this process on 127.0.0.1 and a free port (yields url and demo).
When ../shared holds PFLD-GhostOne's file it is linked into that ZOO_HOME, so the peer is offered too.
"""
from __future__ import annotations

import os
import socket
import struct
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

TEST_MODELS = ("pipnet_mbv2_300w", "pipnet_r18_300w")
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
W300_TEST = SHARED / "data" / "300w" / "helen" / "testset"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_random_weights(home: Path, name: str, seed: int = 0) -> Path:
    """$home/<name>/model.safetensors: a seeded random-init model of entry `name` with a 68-point mean face."""
    import torch
    from safetensors.torch import save_file

    import zoo
    from zoo.nets import build_model
    from zoo.schemes import get_scheme

    from space.render import schematic_face_68

    entry = zoo.card(name)
    torch.manual_seed(seed)
    model = build_model(entry.arch, get_scheme(entry.scheme).num_points, **dict(entry.arch_args))
    if hasattr(model, "set_mean_face"):
        model.set_mean_face(schematic_face_68())
    folder = home / name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.safetensors"
    save_file({k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}, str(path))
    return path


def _prepare(home: Path, mp: pytest.MonkeyPatch, names=TEST_MODELS) -> list[str]:
    from zoo import registry

    from zoo.hub import local_weights

    mp.setenv("ZOO_HOME", str(home))
    for i, name in enumerate(names):
        entry = registry.get(name)
        found = local_weights(entry)
        if found is not None and not str(found).startswith(str(home)):
            continue                                     # real weights (bundled / HF cache): use them
        write_random_weights(home, name, seed=i)
        if entry.hub.sha256 or entry.hub.revision:       # published elsewhere but not here: trust the test file
            mp.setitem(registry.entries(), name, replace(entry, hub=replace(entry.hub, sha256=None, revision=None)))
    _faceboxes(home, mp)
    _yunet()
    _pfld(home)
    return list(names)


def _yunet() -> None:
    """Offer YuNet (the library's first choice of detector) when ../shared has its file: placed into ZOO_HOME
    by zoo.detectors.place_file (sha256-checked), as `zoo convert yunet` does."""
    from zoo.detectors import available, place_file

    src = SHARED / "weights" / "yunet" / "yunet_n_320_320.onnx"
    if src.is_file() and not available("yunet"):
        try:
            place_file("yunet", src)
        except Exception:                                 # optional: tests then use the detectors there are
            pass


def _pfld(home: Path) -> None:
    """Offer the PFLD-GhostOne peer too when ../shared has its file: linked (never copied) into ZOO_HOME,
    where zoo.peers looks for it."""
    src = SHARED / "weights" / "pfld_ghostone" / "PFLD_GhostOne_112_1_opt_sim.onnx"
    if src.is_file():
        (home / "pfld_ghostone").mkdir(parents=True, exist_ok=True)
        dst = home / "pfld_ghostone" / src.name
        if not dst.exists():
            dst.symlink_to(src)


def _faceboxes(home: Path, mp: pytest.MonkeyPatch) -> None:
    """Offer the FaceBoxesV2 detector too: convert ../shared's checkpoint into ZOO_HOME when it is there
    and no copy resolves already (the detector choice is then tested end to end)."""
    from zoo import registry

    from zoo.hub import local_weights

    src = SHARED / "weights" / "faceboxes" / "FaceBoxesV2.pth"
    entry = registry.get("faceboxes_v2")
    if local_weights(entry) is not None or not src.is_file():
        return
    try:
        from zoo.convert import convert_checkpoint

        info = convert_checkpoint(src, home / entry.name / entry.hub.filename)
    except Exception:                                     # optional: the test using it skips
        return
    if entry.hub.sha256 and info.get("sha256") != entry.hub.sha256:   # pinned to another export: trust ours
        mp.setitem(registry.entries(), entry.name, replace(entry, hub=replace(entry.hub, sha256=None, revision=None)))


@pytest.fixture(scope="module")
def space_models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """The two test models, runnable (random-init weights in a temp ZOO_HOME unless real ones exist)."""
    from space.models import CACHE

    home = tmp_path_factory.mktemp("space_zoo_home")
    with pytest.MonkeyPatch.context() as mp:
        names = _prepare(home, mp)
        CACHE.clear()
        yield names
        CACHE.clear()


@dataclass
class SpaceApp:
    url: str
    demo: Any                      # the gr.Blocks; demo.handlers holds the event handlers


@pytest.fixture(scope="module")
def space_app(space_models: list[str]) -> Iterator[SpaceApp]:
    """The app served in-process on 127.0.0.1:<free port>."""
    from space.app import build_demo, launch

    demo = build_demo()
    launch(demo, host="127.0.0.1", port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        yield SpaceApp(demo.local_url or f"http://127.0.0.1:{demo.server_port}/", demo)
    finally:
        demo.close()


# ------------------------------------------------------------------------------------ input files
def synthetic_photo(path: Path, size: int = 384) -> tuple[Path, np.ndarray]:
    """A drawn face as PNG (haar may not find it: use the whole-image option) and its 68 landmarks."""
    from space.render import save_png, synthetic_face

    img, pts = synthetic_face(size)
    return save_png(img, path), pts


def blank_photo(path: Path, size: int = 320) -> Path:
    """A smooth gradient without any face."""
    from PIL import Image

    y, x = np.mgrid[0:size, 0:size]
    img = np.stack([x * 255 // size, y * 255 // size, np.full_like(x, 128)], -1).astype(np.uint8)
    Image.fromarray(img).save(path)
    return path


def truncated_jpeg(path: Path) -> Path:
    """A JPEG cut off after a third of its bytes (header intact, pixels missing)."""
    import io

    from PIL import Image

    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)).save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    path.write_bytes(data[: len(data) // 3])
    return path


def huge_png_header(path: Path, width: int = 20000, height: int = 20000) -> Path:
    """A tiny PNG whose header claims width x height pixels (a decompression-bomb shape), built by hand."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def write_pts(path: Path, points: np.ndarray) -> Path:
    """iBUG .pts (1-based) for 0-based points."""
    body = "\n".join(f"{x + 1:.3f} {y + 1:.3f}" for x, y in np.asarray(points, np.float64))
    path.write_text(f"version: 1\nn_points: {len(points)}\n{{\n{body}\n}}\n")
    return path


def real_300w_sample(name: str | None = None) -> tuple[Path, Path] | None:
    """(image, .pts) of one 300-W common-test photo from ../shared (`name`, else the first), or None."""
    if not W300_TEST.is_dir():
        return None
    for img in ([W300_TEST / name] if name else sorted(W300_TEST.glob("*.jpg"))):
        pts = img.with_suffix(".pts")
        if pts.is_file():
            return img, pts
    return None
