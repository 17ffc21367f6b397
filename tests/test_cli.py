"""python -m zoo: every subcommand, in-process, on real safetensors files."""
import json
import subprocess
import sys

import pytest
from PIL import Image

from zoo.__main__ import main
from zoo_fixtures import face_image, write_random_weights, random_zoo  # noqa: F401 (fixture)


@pytest.mark.parametrize("cmd", ["list", "info", "predict", "export", "bench", "push", "convert"])
def test_every_subcommand_has_help(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    assert e.value.code == 0 and "usage" in capsys.readouterr().out


def test_module_runs_as_a_program():
    out = subprocess.run([sys.executable, "-m", "zoo", "list"], capture_output=True, text=True, check=True).stdout
    assert "pipnet_r18_300w" in out and "mobilefan_wflw" not in out          # published entries by default
    out = subprocess.run([sys.executable, "-m", "zoo", "list", "--all"], capture_output=True, text=True,
                         check=True).stdout
    assert "mobilefan_wflw" in out and "recipe-only" in out


def test_list_filters_and_json(capsys):
    main(["list", "--dataset", "wflw", "--backbone", "resnet50", "--json", "--all"])
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["pipnet_r50_wflw"]
    main(["list", "--dataset", "wflw", "--json"])
    assert {r["name"] for r in json.loads(capsys.readouterr().out)} == {"pipnet_r18_wflw", "pipnet_mbv2_wflw"}
    main(["list", "--all"])
    assert "faceboxes_v2" in capsys.readouterr().out


def test_info_and_unknown_name(capsys):
    assert main(["info", "pipnet_mbv2_cofw", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["scheme"] == "29"
    assert main(["info", "pipnet_r18_300w"]) == 0
    card = capsys.readouterr().out
    assert card.startswith("pipnet_r18_300w: pipnet (resnet18) landmarker, 68-point scheme")
    assert "zoo.load('pipnet_r18_300w')" in card and "NME       3." in card and "python -m train.evaluate" in card
    assert main(["info", "pipnet_r999_300w"]) == 2
    assert "no zoo entry" in capsys.readouterr().err


def test_predict_json_and_annotated_png(random_zoo, tmp_path, capsys):
    write_random_weights("pipnet_mbv2_300w")
    img = tmp_path / "face.png"
    Image.fromarray(face_image()).save(img)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 nonsense")
    rc = main(["predict", "pipnet_mbv2_300w", str(img), str(bad), "--json", "--out", str(tmp_path / "out.png")])
    out, err = capsys.readouterr()
    assert rc == 1 and "bad.jpg" in err                         # the bad file is named, the good one still runs
    res = json.loads(out)
    assert res[0]["image"].endswith("face.png") and set(res[0]["timings_ms"]) >= {"detect", "model", "total"}
    assert (tmp_path / "out_0.png").exists()


def test_export_and_bench(random_zoo, tmp_path, capsys):
    write_random_weights("pipnet_mbv2_300w")
    assert main(["export", "pipnet_mbv2_300w", "--onnx", str(tmp_path / "m.onnx")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["max_abs_err"] < 1e-3
    assert main(["bench", "pipnet_mbv2_300w", "--backend", "torch", "onnx", "--threads", "2", "--repeats", "2",
                 "--json", str(tmp_path / "b.json")]) == 0
    table = capsys.readouterr().out
    assert "per_face" in table and "onnx" in table
    res = json.loads((tmp_path / "b.json").read_text())
    assert {r["backend"] for r in res["results"]} == {"torch", "onnx"}
    assert all(r["name"] == "pipnet_mbv2_300w" and r["model"] > 0 and r["total"] >= r["model"] for r in res["results"])


def test_load_of_unpublished_entry_is_a_clear_cli_error(random_zoo, tmp_path, capsys):
    img = tmp_path / "face.png"
    Image.fromarray(face_image()).save(img)
    assert main(["predict", "pipnet_r101_aflw", str(img)]) == 2
    assert "python -m train pipnet_r101_aflw" in capsys.readouterr().err
