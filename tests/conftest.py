"""Shared test setup. The Hub client never leaves 127.0.0.1 and never touches the user's HF cache or token.

huggingface_hub reads its environment (HF_ENDPOINT, HF_HOME, HF_HUB_DISABLE_XET, ...) into
``huggingface_hub.constants`` once, at import, so it is set here before any test module imports it:
HF_ENDPOINT points at a port reserved now, which the session's ``hub_server`` then listens on.
"""
from __future__ import annotations

import atexit
import os
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_DISABLE_XET"] = "1"  # plain HTTP uploads/downloads: the local hub speaks no Xet
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
for _var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE", "HF_HUB_OFFLINE", "HUGGINGFACE_CO_STAGING",
             "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_TOKEN_PATH", "HF_XET_CACHE", "HF_ASSETS_CACHE"):
    os.environ.pop(_var, None)
_HF_HOME = tempfile.mkdtemp(prefix="zoo-tests-hf-home-")
atexit.register(shutil.rmtree, _HF_HOME, ignore_errors=True)
os.environ["HF_HOME"] = _HF_HOME
# Nothing this machine remembers may make a test pass: the training crop cache and torch hub's checkpoint folder
# (where ImageNet weights would be looked for) are empty folders of this run; $ZOO_HOME is empty per test (below).
os.environ["TRAIN_CACHE_DIR"] = str(Path(_HF_HOME) / "train_cache")
os.environ["TORCH_HOME"] = str(Path(_HF_HOME) / "torch")
for _var in ("ZOO_CALIB_DATA", "XDG_CACHE_HOME"):
    os.environ.pop(_var, None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_HUB_PORT = _free_port()
os.environ["HF_ENDPOINT"] = f"http://127.0.0.1:{_HUB_PORT}"


@pytest.fixture(scope="session")
def hub_server():
    """A local Hub (zoo/hub_server.py) that the huggingface_hub client talks to; yields the server."""
    from zoo.hub_server import HubServer, point_client_at

    try:
        server = HubServer(port=_HUB_PORT).start()
    except OSError:  # the reserved port was taken meanwhile: use another and re-point the client
        server = HubServer().start()
    with pytest.MonkeyPatch.context() as mp:
        point_client_at(mp, server.url)  # also covers huggingface_hub imported before this conftest
        yield server
    server.stop()


@pytest.fixture(autouse=True)
def _own_zoo_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts with its own empty $ZOO_HOME (converted weights, ONNX exports, int8 graphs), so a file
    another test or an earlier session left there cannot make it pass."""
    monkeypatch.setenv("ZOO_HOME", str(tmp_path_factory.mktemp("zoo_home_auto")))


@pytest.fixture
def bundle_without(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """bundle_without("yunet"): the package's bundled files minus those entries (links to the rest), as an
    install that lacks them."""
    import zoo.files

    def hide(*names: str) -> Path:
        fake = tmp_path / "bundle"
        fake.mkdir(exist_ok=True)
        for sub in zoo.files.BUNDLED_DIR.iterdir():
            if sub.name not in names and not (fake / sub.name).exists():
                (fake / sub.name).symlink_to(sub, target_is_directory=sub.is_dir())
        monkeypatch.setattr(zoo.files, "BUNDLED_DIR", fake)
        return fake
    return hide


@pytest.fixture
def hf_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty HF_HOME / HF_HUB_CACHE for one test."""
    home = tmp_path / "hf_home"
    cache = home / "hub"
    cache.mkdir(parents=True)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HOME", str(home))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))
    return home


@pytest.fixture
def zoo_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty ZOO_HOME (zoo.files.local_dir()) for one test, at a path the test knows."""
    home = tmp_path / "zoo_home"
    home.mkdir()
    monkeypatch.setenv("ZOO_HOME", str(home))
    return home
