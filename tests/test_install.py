"""The package as a user meets it: the console command, imports from outside the repository, and CLI output
that lands where it says (never in the current folder)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from zoo.__main__ import main
from zoo_fixtures import write_random_weights, random_zoo  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parents[1]


def test_export_without_onnx_writes_to_the_cache_not_the_current_folder(random_zoo, tmp_path, monkeypatch, capsys):
    write_random_weights("pipnet_mbv2_300w")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    assert main(["export", "pipnet_mbv2_300w"]) == 0
    out, err = capsys.readouterr()
    info = json.loads(out)
    want = random_zoo / "pipnet_mbv2_300w" / "pipnet_mbv2_300w.onnx"
    assert Path(info["path"]) == want and want.is_file() and f"wrote {want}" in err
    assert list(cwd.iterdir()) == []
    assert main(["export", "pipnet_mbv2_300w", "--onnx", str(cwd)]) == 2        # a folder is not a file name
    assert "is a folder" in capsys.readouterr().err and list(cwd.iterdir()) == []


def _copy_project(dst: Path) -> Path:
    """What a source distribution holds: the packaging files and the three packages (no tests, caches, runs)."""
    dst.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dst / name)
    for pkg in ("zoo", "train", "space"):
        shutil.copytree(ROOT / pkg, dst / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.onnx"))
    return dst


@pytest.mark.skipif(subprocess.run([sys.executable, "-c", "import setuptools, pip"]).returncode != 0,
                    reason="pip and setuptools are needed to build the wheel")
def test_wheel_installs_and_works_outside_the_repository(tmp_path):
    """pip builds a wheel of the project; installed elsewhere, the `zoo` command and `import zoo` work from
    another folder and load the bundled weights from the installed package."""
    src = _copy_project(tmp_path / "src")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(pip + ["wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(src)],
                   check=True, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    (wheel,) = (tmp_path / "dist").glob("facezoo-*.whl")
    import zipfile

    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"zoo/registry.json", "zoo/weights/pipnet_r18_300w/model.safetensors", "train/__init__.py",
            "space/__init__.py", "zoo/nets/pipnet.py"} <= names
    assert not any(n.startswith("tests/") for n in names)

    site = tmp_path / "site"
    subprocess.run(pip + ["install", "--no-deps", "--no-index", "--no-compile", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, text=True, timeout=240)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ZOO_HOME")}
    env.update(PYTHONPATH=str(site), HF_HOME=str(tmp_path / "hf"), ZOO_HOME=str(tmp_path / "zoo_home"),
               HF_HUB_OFFLINE="1")
    out = subprocess.run([str(site / "bin" / "zoo"), "list", "--published"], cwd=elsewhere, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "pipnet_r18_300w" in out.stdout and "published" in out.stdout
    code = ("import zoo, zoo.hub, numpy as np; lm = zoo.load('pipnet_r18_300w'); "
            "faces = lm(np.zeros((120, 120, 3), np.uint8), boxes=[[20, 20, 100, 100]]); "
            "print(zoo.__file__); print(zoo.hub.resolve_weights(lm.entry)); print(faces[0].landmarks.shape)")
    out = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    module, weights, shape = out.stdout.split("\n")[:3]
    assert module.startswith(str(site)) and weights.startswith(str(site / "zoo" / "weights")) and shape == "(68, 2)"
