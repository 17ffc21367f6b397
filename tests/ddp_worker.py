"""Run under torchrun by test_distributed.py (not a test module): data-parallel training on synthetic faces.

    torchrun --standalone --nproc_per_node 2 tests/ddp_worker.py OUT

Writes, from rank 0: OUT/straight.pt (2 epochs in one go) and OUT/resumed.pt (1 epoch, checkpoint, a fresh
Trainer resumes and finishes), each the model's state_dict.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))     # the repository: train/, zoo/

import torch  # noqa: E402

from train.distributed import barrier, init_from_env, shutdown  # noqa: E402
from train.loop import Trainer  # noqa: E402
from train_fixtures import quiet_recipe, tiny_data  # noqa: E402


def main(out: Path) -> None:
    torch.set_num_threads(1)
    dist, device = init_from_env("cpu")
    recipe = quiet_recipe(epochs=2, batch_size=2)
    data = tiny_data(8)
    straight = Trainer(recipe, data, out / "a", device, bf16=False, dist=dist)
    straight.fit(progress=False)
    first = Trainer(recipe, data, out / "b", device, bf16=False, dist=dist)
    first.train_epoch(progress=False)
    first.save_checkpoint()
    barrier(dist)
    resumed = Trainer(recipe, data, out / "b", device, bf16=False, dist=dist)
    assert resumed.load_checkpoint() and resumed.epoch == 1
    resumed.fit(progress=False)
    if dist.main:
        torch.save(straight.model.state_dict(), out / "straight.pt")
        torch.save(resumed.model.state_dict(), out / "resumed.pt")
        torch.save({"straight": straight.history, "resumed": resumed.history}, out / "history.pt")
    shutdown(dist)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
