"""torchrun data-parallel training on CPU (gloo, 2 processes): two ranks equal one process accumulating the
same global batch, a resumed DDP run equals an uninterrupted one, and `torchrun -m train` writes one folder."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fixtures_datasets import have_300w, write_300w
from train.loop import Trainer
from train_fixtures import quiet_recipe, tiny_data

ROOT = Path(__file__).resolve().parents[1]


def torchrun(args: list[str], tmp: Path, timeout: int = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TRAIN_CACHE_DIR": str(tmp / "cache"),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *args]
    done = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ddp")
    torchrun([str(ROOT / "tests" / "ddp_worker.py"), str(out)], out)
    return out


def params(state: dict) -> dict:
    """Trained parameters only: BatchNorm running statistics are per rank under DDP (rank 0's are kept)."""
    return {k: v for k, v in state.items() if "running_" not in k and "num_batches" not in k}


@pytest.fixture
def one_thread():
    """The ranks run one thread each; so does the reference. Thread count changes float summation order,
    and a few from-scratch Adam steps amplify that noise to ~1e-2, which would hide a real mismatch."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_two_ranks_equal_one_process_with_the_doubled_batch(ddp_run: Path, tmp_path: Path, one_thread):
    one = Trainer(quiet_recipe(epochs=2, batch_size=2), tiny_data(8), tmp_path, bf16=False, accum=2)
    assert one.global_batch == 4 and one.lr == pytest.approx(2 * one.recipe.lr)
    one.fit(progress=False)
    ddp = torch.load(ddp_run / "straight.pt", weights_only=True)
    ref = one.model.state_dict()
    start = Trainer(quiet_recipe(epochs=2, batch_size=2), tiny_data(8), tmp_path / "init", bf16=False).model.state_dict()
    moved = 0
    for k, v in params(ddp).items():
        assert torch.allclose(v.float(), ref[k].float(), atol=2e-5, rtol=1e-4), k
        moved += int(not torch.equal(v, start[k]))
    assert moved > 0.9 * len(params(ddp))          # the comparison is about trained weights, not the init
    hist = torch.load(ddp_run / "history.pt", weights_only=True)["straight"]
    assert [h["loss"] for h in hist] == pytest.approx([h["loss"] for h in one.history], rel=1e-4)


def test_resumed_ddp_run_matches_an_uninterrupted_one(ddp_run: Path):
    a = torch.load(ddp_run / "straight.pt", weights_only=True)
    b = torch.load(ddp_run / "resumed.pt", weights_only=True)
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), atol=1e-6), k
    assert (ddp_run / "b" / "checkpoint.pt").is_file() and (ddp_run / "b" / "history.json").is_file()


@pytest.mark.skipif(not have_300w(), reason="../shared/data/300w not present")
def test_torchrun_cli_writes_one_final_folder(tmp_path: Path):
    data = write_300w(tmp_path, per_folder=2)
    torchrun(["-m", "train", "pipnet_mbv2_300w", "--data", str(data), "--epochs", "1", "--batch-size", "2",
              "--limit", "4", "--no-eval", "--quiet", "--threads", "1", "--out", str(tmp_path / "run")], tmp_path)
    final = tmp_path / "run" / "final"
    cfg = json.loads((final / "config.json").read_text())
    assert cfg["training"]["processes"] == 2 and cfg["training"]["global_batch"] == 4
    assert cfg["training"]["lr"] == pytest.approx(2 * cfg["recipe"]["lr"])
    assert "global batch 4 (2 per device x 2 process(es) x 1 accumulated)" in (final / "README.md").read_text()
    assert (final / "train_command.txt").read_text().startswith("torchrun --nproc_per_node 2 -m train ")
