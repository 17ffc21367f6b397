"""python -m train NAME --data DIR [--device cpu|cuda] [--epochs N] [--resume]
   torchrun --nproc_per_node N -m train NAME --data DIR ...      (data-parallel: N processes, one per GPU)

Trains a zoo entry from its recipe, evaluates it on the recipe's test split, and writes a Hub-ready
folder (model.safetensors + config.json + README.md card + metrics) that `python -m zoo push` publishes.
"""
from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from dataclasses import replace
from pathlib import Path

import torch

from zoo.cpu import default_threads, native_bf16

from .distributed import init_from_env, main_first, shutdown
from .loop import Trainer, load_train_data
from .output import finish
from .recipes import BEST_TEACHER, get_recipe, recipe_entry, resolve_teacher

log = logging.getLogger("train")


def load_teacher(name_or_folder: str, device: str):
    from .evaluate import load_landmarker

    lm = load_landmarker(name_or_folder, detector=None)
    teacher = lm.model.to(device).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def use_bf16(choice: str, device: str) -> bool:
    if choice == "auto":
        return native_bf16(device)
    if choice == "on" and not native_bf16(device):
        log.warning("bf16 autocast on %s without native bf16: expect it to run several times slower", device)
    return choice == "on"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train", description=__doc__.splitlines()[0])
    p.add_argument("name", help="zoo entry to train, e.g. pipnet_r18_300w")
    p.add_argument("--data", type=Path, required=True, help="dataset root in its authors' layout")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--epochs", type=int, help="override the recipe's epochs (the schedule follows)")
    p.add_argument("--batch-size", type=int, help="per device (process); the global batch multiplies it by "
                   "the number of processes and --accum-steps")
    p.add_argument("--accum-steps", type=int, default=1, help="micro-batches accumulated per optimiser step")
    p.add_argument("--lr", type=float, help="at one device's batch; scaled linearly with processes x accum-steps")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--out", type=Path, help="run folder (default runs/NAME)")
    p.add_argument("--train-split", help="override the recipe's train split (300w: fit holds out val's photos)")
    p.add_argument("--val-split", help="held-out split recorded for choosing settings (never the test split)")
    p.add_argument("--warmup-epochs", type=int)
    p.add_argument("--pseudo", type=Path, action="append", default=[],
                   help="a pseudo-label pool from python -m train.teachers (pool.npz); repeatable")
    p.add_argument("--no-partial", action="store_true", help="drop the recipe's partial-label sets (e.g. when a "
                   "pool already holds them completed by teachers)")
    p.add_argument("--input-size", type=int, help="train at another input size than the entry's (a variant, e.g. "
                   "publish --variant fast); a multiple of 32")
    p.add_argument("--pose-repeat", type=int, nargs=4, metavar=("N0", "N15", "N30", "N45"),
                   help="times a face is seen per epoch by its |yaw| bin (0-15, 15-30, 30-45, >=45 degrees)")
    p.add_argument("--limit", type=int, help="use only the first N training faces (smoke tests)")
    p.add_argument("--pretrained", type=Path, help="torchvision ImageNet checkpoint file for the backbone")
    p.add_argument("--no-pretrained", action="store_true", help="train from scratch")
    p.add_argument("--paper-recipe", action="store_true",
                   help="the paper's recipe as published (Adam 1e-4, step schedule), not the zoo's from-scratch one")
    p.add_argument("--teacher", help="MobileFAN: teacher zoo entry or folder (default: the best published PIPNet "
                   "of the dataset)")
    p.add_argument("--init", help="zoo entry or model folder to start from (train/transfer.py: across schemes and "
                   "architectures, what matches)")
    p.add_argument("--heatmap-fg-weight", type=float, help="MobileFAN: extra weight of the heatmaps' peak pixels")
    p.add_argument("--no-distill", action="store_true", help="MobileFAN without distillation (ablation)")
    p.add_argument("--fa-weight", type=float)
    p.add_argument("--fs-weight", type=float)
    p.add_argument("--bf16", choices=("auto", "on", "off"), default="auto",
                   help="bf16 autocast; auto: only where the device has native bf16 (zoo.cpu.native_bf16); "
                   "emulated on an AVX2-only CPU it is several times slower")
    p.add_argument("--no-bf16", action="store_true", help="the same as --bf16 off")
    p.add_argument("--seed", type=int, help="seed of initialisation and data order (repeat an ablation arm)")
    p.add_argument("--threads", type=int, help="torch threads (default: the cores this process may use)")
    p.add_argument("--no-eval", action="store_true", help="skip evaluation on the test split")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if a.pretrained and a.no_pretrained:
        p.error("--pretrained FILE and --no-pretrained contradict each other")
    if a.input_size is not None and (a.input_size < 32 or a.input_size % 32):
        p.error(f"--input-size {a.input_size}: the networks' stride is 32, so a multiple of 32 is needed")
    if a.pretrained and not a.pretrained.is_file():
        p.error(f"--pretrained {a.pretrained}: no such file")
    torch.set_num_threads(a.threads or default_threads())
    over = dict(epochs=a.epochs, batch_size=a.batch_size, lr=a.lr, fa_weight=a.fa_weight, fs_weight=a.fs_weight,
                init=a.init, heatmap_fg_weight=a.heatmap_fg_weight, train_split=a.train_split, val_split=a.val_split,
                warmup_epochs=a.warmup_epochs, input_size=a.input_size, seed=a.seed,
                pose_repeat=tuple(a.pose_repeat) if a.pose_repeat else None)
    if a.no_pretrained:
        over["pretrained"] = False
    if a.pretrained:            # a file named on the command line is loaded, whatever the recipe says
        over["pretrained"] = True
    if a.no_partial:
        over["partial"] = ()
    if a.pseudo:
        over["pseudo"] = tuple(str(x) for x in a.pseudo)
    if a.no_distill:
        over.update(fa_weight=0.0, fs_weight=0.0)
    if a.teacher:
        over["teacher"] = a.teacher
    recipe = get_recipe(a.name, paper=a.paper_recipe, **over)
    if a.no_distill:                        # get_recipe drops None overrides, so the teacher goes here
        recipe = replace(recipe, teacher=None)
    out = a.out or Path("runs") / a.name
    started = out / "recipe.json"
    if a.resume and recipe.teacher == BEST_TEACHER and started.is_file():
        recipe = replace(recipe, teacher=json.loads(started.read_text()).get("teacher"))   # the one it began with
    recipe = resolve_teacher(recipe, a.data)
    dist, device = init_from_env(a.device)
    try:
        if not a.resume and (out / "checkpoint.pt").exists():
            log.error("%s exists: pass --resume to continue it or --out for a new run", out / "checkpoint.pt")
            return 2
        with main_first(dist):              # rank 0 builds the crop cache; the others read it
            pre = recipe_entry(recipe).preprocess             # each entry trains at its own input size
            data = load_train_data(recipe, a.data, pre.input_size, pre.gt_box_scale, a.limit,
                                   progress=not a.quiet and dist.main)
        teacher = load_teacher(recipe.teacher, device) if recipe.teacher and (recipe.fa_weight or recipe.fs_weight) else None
        trainer = Trainer(recipe, data, out, device, bf16=use_bf16(a.bf16 if not a.no_bf16 else "off", device), pretrained_path=a.pretrained,
                          teacher=teacher, dist=dist, accum=a.accum_steps)
        if a.resume:
            trainer.load_checkpoint()
        if dist.main:
            out.mkdir(parents=True, exist_ok=True)
            (out / "recipe.json").write_text(json.dumps(recipe.to_dict(), indent=1))
        trainer.fit(progress=not a.quiet)
        if dist.main:
            launcher = f"torchrun --nproc_per_node {dist.world} -m train " if dist.active else "python -m train "
            command = launcher + " ".join(shlex.quote(x) for x in (argv if argv is not None else sys.argv[1:]))
            finish(trainer, out, a.data, not a.no_eval, command, progress=not a.quiet)
    finally:
        shutdown(dist)
    return 0


if __name__ == "__main__":
    sys.exit(main())
