"""Training recipes as data: one per zoo entry, named like it.

PIPNet's published recipe: input 256, Adam lr 1e-4, 60 epochs, x0.1 at 30 and 50, batch 16, ImageNet init,
loss 10 x score-map MSE + 1 x offset L1. No ImageNet checkpoint exists on our machines, so the published
300W entries here are trained from scratch with the `scratch` overrides (see SCRATCH_NOTE).
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from zoo import registry

from .datasets import read_dataset
from .evaluate import evaluate, load_landmarker

log = logging.getLogger("train.recipes")


@dataclass(frozen=True)
class Augment:
    translate_px: float = 30.0       # +- pixels at a 256 input (the same share of the crop at any size)
    rotate_deg: float = 30.0
    scale: tuple[float, float] = (1.0, 1.0)
    flip: float = 0.5
    occlusion: float = 0.5           # probability of a random box of random colour
    blur: float = 0.2
    grayscale: float = 0.2
    color_jitter: float = 0.0        # brightness/contrast amplitude


@dataclass(frozen=True)
class Recipe:
    name: str                        # the zoo entry it reproduces
    dataset: str
    epochs: int = 60
    batch_size: int = 16
    optimizer: str = "adam"
    lr: float = 1e-4
    weight_decay: float = 0.0
    schedule: str = "step"           # "step" (x0.1 at milestones) or "cosine" (with warmup)
    milestones: tuple[int, ...] = (30, 50)
    warmup_epochs: int = 0
    cls_weight: float = 10.0
    reg_weight: float = 1.0
    pretrained: bool = True          # ImageNet init of the backbone (local file or torch hub cache)
    augment: Augment = field(default_factory=Augment)
    heatmap_sigma: float = 1.5       # MobileFAN targets, in 64x64 heatmap pixels
    heatmap_fg_weight: float = 0.0   # extra weight of the target's peak pixels (train/losses.py heatmap_loss)
    teacher: str | None = None       # MobileFAN: zoo entry or folder of the PIPNet teacher
    fa_weight: float = 0.0           # feature-aligned distillation
    fs_weight: float = 0.0           # feature-similarity distillation
    seed: int = 0
    train_split: str = "train"
    test_split: str = "test"
    val_split: str | None = None     # held out from training, for choosing settings (never the test split)
    repeat: int = 1                  # times the train split is seen per epoch (a small set beside a big one)
    # Labelled sets of another landmark scheme ("300w/train") that supervise only the points it shares with
    # this entry's scheme (zoo.schemes.embed_points; the loss skips the rest).
    partial: tuple[str, ...] = ()
    init: str | None = None          # zoo entry or model folder whose weights start training (train/transfer.py)
    pseudo: tuple[str, ...] = ()     # pseudo-label pools (train.teachers' pool.npz) added to the training data
    input_size: int | None = None    # None: the entry's; another size trains a variant (publish --variant)
    # Times a face is seen per epoch by its |yaw| bin (train/pose.py YAW_EDGES: 0-15, 15-30, 30-45, >=45 deg),
    # estimated from its labels: () sees every face once. Profiles are rare in 300-W and in the teachers' pools.
    pose_repeat: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


SCRATCH_NOTE = (
    "Trained from scratch (no ImageNet checkpoint can be had here). Changes from the paper's recipe: "
    "weight decay 5e-4 (the paper's own no-pretraining setting), AdamW at lr 1e-3 with warmup and cosine "
    "decay (BatchNorm trunks trained from random init tolerate and need the larger step), and stronger "
    "augmentation (scale 0.9-1.1, colour jitter) against over-fitting the small training set.")

SCRATCH = dict(pretrained=False, optimizer="adamw", lr=1e-3, weight_decay=5e-4, schedule="cosine", warmup_epochs=1,
               augment=Augment(scale=(0.9, 1.1), color_jitter=0.3))
_TEST_SPLIT = {"300w": "common", "wflw": "test", "cofw": "test", "aflw": "test"}


def _base(name: str) -> Recipe:
    e = registry.get(name)
    r = Recipe(name=name, dataset=e.dataset, test_split=_TEST_SPLIT[e.dataset])
    if e.arch == "mobilefan":
        teacher = f"pipnet_r101_{e.dataset}"
        r = replace(r, teacher=teacher, fa_weight=1.0, fs_weight=1.0, lr=1e-3, schedule="cosine", warmup_epochs=1)
    return r


RECIPES: dict[str, Recipe] = {n: _base(n) for n in registry.list_models() if "." not in n}
PAPER_RECIPES: dict[str, Recipe] = dict(RECIPES)      # as published, before our from-scratch changes
# The published 300W entries: from scratch (see SCRATCH_NOTE); epochs set to what CPU time allowed.
for _n in ("pipnet_r18_300w", "pipnet_mbv2_300w", "pipnet_r50_300w", "pipnet_r101_300w"):
    RECIPES[_n] = replace(RECIPES[_n], **SCRATCH)
# MobileFAN distils from the best published PIPNet of its dataset, resolved when training starts: publishing a
# stronger teacher (ResNet50/101) makes the same command re-distil from it.
BEST_TEACHER = "best"
# As in the paper the encoder starts from ImageNet (`--pretrained FILE`: the file in ../shared, since nothing is
# downloaded; without it, from scratch), not from a landmark trunk the teacher's features would merely repeat.
# Trained on 300-W's fit split so that val can choose between arms; the heatmap loss weighs the peak pixels
# (heatmap_fg_weight), without which a CPU-length schedule leaves flat maps.
RECIPES["mobilefan_300w"] = replace(RECIPES["mobilefan_300w"], teacher=BEST_TEACHER, pretrained=False,
                                    weight_decay=5e-4, optimizer="adamw", augment=SCRATCH["augment"],
                                    heatmap_fg_weight=10.0, epochs=4, train_split="fit", val_split="val")


# 98-point WFLW entries from what exists here (no WFLW training set): the 50 fewshot_fit faces seen 8 times an
# epoch beside 300-W's 2012 faces, which supervise the 68 shared points; started from the published 300-W weights
# of the same backbone (backbone and the heads of the 68 shared points), so a shorter, gentler schedule.
FEWSHOT_NOTE = (
    "Not the paper's training set: WFLW's 7500 training faces cannot be had here. Trained on 300-W's 2012 "
    "training faces (68 points, supervising only the 68 of the 98 points they share, a masked loss) and 50 "
    "labelled WFLW faces (all 98 points; 11 more held out to choose settings), started from the 300-W weights "
    "of the same backbone.")
for _b in ("r18", "mbv2"):
    RECIPES[f"pipnet_{_b}_wflw"] = replace(
        RECIPES[f"pipnet_{_b}_wflw"], **{**SCRATCH, "lr": 5e-4}, epochs=6, train_split="fewshot_fit",
        val_split="fewshot_val", repeat=8, partial=("300w/train",), init=f"pipnet_{_b}_300w")


def best_teacher(dataset: str, data: Path, split: str) -> str:
    """The published PIPNet entry of `dataset` with the lowest NME on its held-out `split` (ground-truth crops):
    the teacher is chosen where the student is, never on a test split."""
    names = registry.list_models(dataset=dataset, arch="pipnet", published=True)
    if not names:
        raise KeyError(f"no published PIPNet entry for {dataset} to distil from; train one first or pass --teacher")
    samples = read_dataset(dataset, data, split)
    scored = sorted((evaluate(load_landmarker(n), samples, progress=False).nme, n) for n in names)
    log.info("teacher candidates, NME on %s/%s: %s", dataset, split,
             ", ".join(f"{n} {100 * v:.3f}%" for v, n in scored))
    return scored[0][1]


def resolve_teacher(recipe: Recipe, data: Path) -> Recipe:
    """`recipe` with BEST_TEACHER replaced by the entry best_teacher picks on the recipe's val split in `data`."""
    if recipe.teacher != BEST_TEACHER:
        return recipe
    return replace(recipe, teacher=best_teacher(recipe.dataset, data, recipe.val_split or "val"))


def get_recipe(name: str, paper: bool = False, **overrides: Any) -> Recipe:
    """The zoo entry's recipe (or, with paper=True, the paper's as published), with overrides."""
    name = name if name in RECIPES else name.split(".")[0]    # a tagged variant trains by its base's recipe
    if name not in RECIPES:
        raise KeyError(f"no recipe {name!r}; recipes exist for every zoo landmarker: {sorted(RECIPES)}")
    base = (PAPER_RECIPES if paper else RECIPES)[name]
    over = {k: v for k, v in overrides.items() if v is not None}
    if "epochs" in over and "milestones" not in over:     # a step schedule keeps its shape at any length
        over["milestones"] = tuple(max(1, round(m * over["epochs"] / base.epochs)) for m in base.milestones)
    return replace(base, **over)


def recipe_entry(recipe: Recipe) -> registry.Entry:
    """The registry entry a run trains, at the recipe's input size when it sets one (the run's config.json then
    carries that size, so the folder loads and publishes as what it is)."""
    e = registry.get(recipe.name)
    if recipe.input_size is None or recipe.input_size == e.preprocess.input_size:
        return e
    return replace(e, arch_args={**e.arch_args, "input_size": recipe.input_size},
                   preprocess=replace(e.preprocess, input_size=recipe.input_size))
