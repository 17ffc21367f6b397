"""python -m train.ablation: rows scored on the same faces, stored scores kept for runs that are gone
or whose weights are unchanged."""
from __future__ import annotations

import json

import numpy as np
import pytest

import fixtures_datasets as fx
from zoo import registry


@pytest.mark.skipif(not (fx.have_300w() and fx.have_samples("wflw")), reason="../shared data absent")
def test_ablation_scores_rows_and_keeps_what_it_cannot_rescore(tmp_path):
    from train.ablation import main

    fx.write_300w(tmp_path, per_folder=1)
    fx.write_wflw(tmp_path)
    rows = [{"label": "published", "model": "pipnet_mbv2_300w", "data": "300-W fit"},
            {"label": "deleted run", "model": str(tmp_path / "runs" / "gone" / "final"), "data": "-"}]
    (tmp_path / "rows.json").write_text(json.dumps(rows))
    out, readme = tmp_path / "ablation.json", tmp_path / "README.md"
    readme.write_text("# x\n<!-- t:start -->\nold\n<!-- t:end -->\nafter\n")
    args = ["--rows", str(tmp_path / "rows.json"), "--data", str(tmp_path), "--columns", "300w/common", "wflw/test:68",
            "--json", str(out), "--readme", str(readme), "--marker", "t"]
    assert main(args) == 0
    doc = json.loads(out.read_text())
    scores = dict(doc["rows"][0]["scores"])
    assert set(scores) == {"300w/common", "wflw/test:68"} and all(0 < v < 0.5 for v in scores.values())
    assert doc["rows"][1]["scores"] == {}
    assert doc["rows"][0]["weights_sha256"] == registry.get("pipnet_mbv2_300w").hub.sha256
    doc["rows"][1]["scores"] = {"300w/common": 0.0321}          # what an earlier run measured
    doc["rows"][0]["scores"]["300w/common"] = 0.0123            # planted: the same weights are not scored again
    out.write_text(json.dumps(doc))
    assert main(args) == 0
    again = json.loads(out.read_text())["rows"]
    assert again[1]["scores"] == {"300w/common": 0.0321}
    assert again[0]["scores"]["300w/common"] == 0.0123
    doc = json.loads(out.read_text())
    doc["rows"][0]["weights_sha256"] = "0" * 64                   # other weights: scored afresh
    out.write_text(json.dumps(doc))
    assert main(args) == 0
    assert np.isclose(json.loads(out.read_text())["rows"][0]["scores"]["300w/common"], scores["300w/common"])
    text = readme.read_text()
    assert "old" not in text and "| deleted run | - | 3.21 | – |" in text and text.endswith("<!-- t:end -->\nafter\n")
