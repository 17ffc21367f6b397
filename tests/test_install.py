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
