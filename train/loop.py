"""The training loop shared by every recipe: cached crops -> GPU/CPU batch augmentation -> model -> loss,
a checkpoint every epoch (resumable), then a Hub-ready folder with the measured metrics."""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from zoo import registry
from zoo.cpu import cpu_name, simd_summary
from zoo.crop import normalise_tensor
from zoo.nets import build_model
from zoo.nets.backbones import find_imagenet_checkpoint, load_imagenet
from zoo.schemes import embed_points, get_scheme

from .augment import augment_batch
from .cache import cached_crops
from .distributed import SINGLE, DistInfo, barrier, mean_across
from .losses import FeatureAligner, feature_similarity_loss, heatmap_loss, pipnet_loss
from .pose import YAW_EDGES, estimate_pose, posable, yaw_bin_labels, yaw_bins
from .recipes import Recipe, recipe_entry
from .transfer import init_from

log = logging.getLogger(__name__)
LOG_EVERY = 20          # steps between progress lines in the log (images/s and ETA of the whole run)


def _hms(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


@dataclass
class TrainData:
    images: torch.Tensor      # (M,3,S,S) uint8
    landmarks: torch.Tensor   # (M,N,2) in [0,1]; NaN where a face does not label a point (partial labels)
    n_images: int
    source: str
    coarse: torch.Tensor | None = None   # (M,) bool: the face supervises the score map only (pseudo-labels)

    @staticmethod
    def concat(parts: list["TrainData"]) -> "TrainData":
        coarse = None
        if any(p.coarse is not None for p in parts):
            coarse = torch.cat([p.coarse if p.coarse is not None else torch.zeros(p.n_images, dtype=torch.bool)
                                for p in parts])
        return TrainData(torch.cat([p.images for p in parts]), torch.cat([p.landmarks for p in parts]),
                         sum(p.n_images for p in parts), " + ".join(p.source for p in parts), coarse)


def crops_data(samples, size: int, scale: float, tag: str, source: str, scheme: str | None = None,
               src_scheme: str | None = None, repeat: int = 1, progress: bool = True) -> TrainData:
    """Cached crops of `samples` as TrainData; labels of `src_scheme` are embedded in `scheme` (NaN elsewhere)."""
    imgs, lms = cached_crops(samples, size, scale, tag, progress=progress)
    if scheme and src_scheme:
        lms = embed_points(lms, src_scheme, scheme)
    images, landmarks = torch.from_numpy(imgs).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(lms)
    if repeat > 1:
        images, landmarks = images.repeat(repeat, 1, 1, 1), landmarks.repeat(repeat, 1, 1)
        source = f"{source} x{repeat} per epoch"
    return TrainData(images, landmarks, len(images), source)


def load_train_data(recipe: Recipe, data_dir: Path, size: int, scale: float, limit: int | None = None,
                    progress: bool = True) -> TrainData:
    """The recipe's train split (x recipe.repeat) and its partial-label sets (`recipe.partial`, read from
    data_dir/<dataset> or data_dir's parent/<dataset>)."""
    from .datasets import read_dataset, sibling_root

    samples = read_dataset(recipe.dataset, Path(data_dir), recipe.train_split)
    if limit:
        samples = samples[:limit]
    parts = [crops_data(samples, size, scale, f"{recipe.dataset}_{recipe.train_split}",
                        f"{recipe.dataset}/{recipe.train_split} ({len(samples)} faces) from {data_dir}",
                        repeat=recipe.repeat, progress=progress)]
    scheme = registry.get(recipe.name).scheme
    for item in recipe.partial:
        name, _, split = item.partition("/")
        root = sibling_root(Path(data_dir), name)
        extra = read_dataset(name, root, split or None)
        if limit:
            extra = extra[:limit]
        parts.append(crops_data(extra, size, scale, f"{name}_{split}", f"{name}/{split} ({len(extra)} faces, "
                                f"shared points only) from {root}", scheme, name, progress=progress))
    for pool in recipe.pseudo:
        extra = pool_data(Path(pool), scheme, size, scale, progress)
        parts.append(extra if not limit else TrainData(extra.images[:limit], extra.landmarks[:limit], min(limit, extra.n_images), extra.source))
    data = TrainData.concat(parts) if len(parts) > 1 else parts[0]
    return pose_balanced(data, scheme, recipe.pose_repeat) if recipe.pose_repeat else data


def pose_balanced(data: TrainData, scheme: str, repeats: tuple[int, ...]) -> TrainData:
    """`data` with each face repeated by its |yaw| bin (`repeats[i]` for bin i of YAW_EDGES). A face without
    the six points the pose fit reads (a pseudo-label the teachers left partly empty) is seen once."""
    if len(repeats) != len(YAW_EDGES) or min(repeats) < 1:
        raise ValueError(f"pose_repeat {repeats}: one count >= 1 per |yaw| bin {yaw_bin_labels()}")
    lms = data.landmarks.numpy()
    known = np.flatnonzero(posable(lms, scheme))
    bins = yaw_bins(estimate_pose(lms[known], scheme)[:, 0])
    times = np.ones(data.n_images, np.int64)
    for k, mask in zip(repeats, bins.values()):
        times[known[mask]] = k
    idx = torch.from_numpy(np.repeat(np.arange(data.n_images), times))
    counts = ", ".join(f"{label} {int(m.sum())} x{k}" for (label, m), k in zip(bins.items(), repeats))
    log.info("pose-balanced epoch: %d faces -> %d (%s)", data.n_images, len(idx), counts)
    return TrainData(data.images[idx], data.landmarks[idx], len(idx), f"{data.source}; pose-balanced ({counts})",
                     data.coarse[idx] if data.coarse is not None else None)


def pool_data(pool: Path, scheme: str, size: int, scale: float, progress: bool = True) -> TrainData:
    """A pseudo-label pool written by train.teachers (pool.npz + summary.json beside it): its faces' crops,
    cached like the labelled ones; points the teachers left unlabelled stay NaN (the loss skips them)."""
    from .datasets import Sample

    with np.load(pool) as z:
        photos, lms = z["photos"], z["landmarks"]
    summary = json.loads((pool.parent / "summary.json").read_text()) if (pool.parent / "summary.json").is_file() else {}
    if summary.get("scheme", scheme) != scheme:
        raise ValueError(f"{pool}: pseudo-labels in the {summary['scheme']}-point scheme, the model has {scheme}")
    samples = [Sample(Path(p), lm.astype(np.float32), None, "pseudo", {}) for p, lm in zip(photos, lms)]
    who = ", ".join(summary.get("teachers", [])) or "unknown teachers"
    digest = hashlib.sha1(np.nan_to_num(lms, nan=-1.0).round(2).tobytes()).hexdigest()[:10]   # labels key the cache
    return crops_data(samples, size, scale, f"pool_{pool.parent.name}_{digest}",
                      f"{len(samples)} faces pseudo-labelled by {who} ({pool})", progress=progress)


def hardware(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"{cpu_name()} ({simd_summary()}), {torch.get_num_threads()} thread(s)"   # int8/bf16 speed follows the flags



def make_model(recipe: Recipe, mean_face: np.ndarray, pretrained_path: Path | None = None) -> torch.nn.Module:
    entry = recipe_entry(recipe)
    model = build_model(entry.arch, get_scheme(entry.scheme).num_points, **dict(entry.arch_args))
    if hasattr(model, "set_mean_face"):
        model.set_mean_face(mean_face)          # from the training labels, stored in the weight file
    if pretrained_path is not None and not recipe.pretrained:
        raise ValueError(f"an ImageNet file was given ({pretrained_path}) but the recipe of {recipe.name} says "
                         "pretrained=False: set it (python -m train --pretrained does) or drop the file")
    if recipe.pretrained:
        backbone = entry.arch_args.get("backbone", "mobilenet_v2")
        load_imagenet(model.backbone, find_imagenet_checkpoint(backbone, pretrained_path))
    return model


def lr_lambda(recipe: Recipe, steps_per_epoch: int):
    total = recipe.epochs * steps_per_epoch
    warm = recipe.warmup_epochs * steps_per_epoch

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        if recipe.schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))
        return 0.1 ** sum(step >= m * steps_per_epoch for m in recipe.milestones)
    return f


class _Objective(nn.Module):
    """The student and its distillation aligner with the loss as forward: one module, so that under
    DistributedDataParallel every trained parameter's gradient is averaged over the ranks."""

    def __init__(self, trainer: "Trainer"):
        super().__init__()
        self.model, self.aligner = trainer.model, trainer.aligner
        self._loss = trainer.loss

    def forward(self, x: torch.Tensor, lms: torch.Tensor, coarse: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, dict[str, float]]:
        return self._loss(x, lms, coarse)


class Trainer:
    """`recipe.batch_size` is the batch of one device. Data-parallel ranks (`dist`) and gradient accumulation
    (`accum`) multiply it into the global batch, and the learning rate is scaled linearly with them."""

    def __init__(self, recipe: Recipe, data: TrainData, out_dir: Path, device: str = "cpu", bf16: bool = True,
                 pretrained_path: Path | None = None, teacher: Any = None, dist: DistInfo = SINGLE,
                 accum: int = 1):
        self.recipe, self.data, self.out_dir, self.device = recipe, data, Path(out_dir), device
        self.dist, self.accum = dist, max(1, accum)
        self.global_batch = recipe.batch_size * dist.world * self.accum
        if data.n_images < self.global_batch:
            raise ValueError(f"{data.n_images} training faces cannot fill one global batch of {self.global_batch} "
                             f"({recipe.batch_size} per device x {dist.world} process(es) x {self.accum} accumulation)")
        self.lr = recipe.lr * dist.world * self.accum
        self.entry = recipe_entry(recipe)
        self.scheme = get_scheme(self.entry.scheme)
        torch.manual_seed(recipe.seed)
        self.mean_face = data.landmarks.nanmean(0).numpy()      # each point over the faces that label it
        self.model = make_model(recipe, self.mean_face, pretrained_path)
        self.pretrained_file = Path(pretrained_path).name if pretrained_path and recipe.pretrained else None
        self.init_note = (init_from(self.model, self.entry.arch, self.entry.scheme, recipe.init)
                          if recipe.init else None)
        self.model.to(device)
        # NHWC on the CPU: oneDNN's convolutions (depthwise above all) run ~1.5x faster for MobileNetV2 here
        self.memory_format = torch.channels_last if device == "cpu" else torch.contiguous_format
        self.model.to(memory_format=self.memory_format)
        self.teacher = teacher
        params = list(self.model.parameters())
        self.aligner = None
        if teacher is not None and recipe.fa_weight > 0:
            self.aligner = FeatureAligner(self.model.encoder_channels, teacher.backbone.out_channels).to(device)
            params += list(self.aligner.parameters())
        opt_cls = torch.optim.AdamW if recipe.optimizer == "adamw" else torch.optim.Adam
        self.opt = opt_cls(params, lr=self.lr, weight_decay=recipe.weight_decay)
        self.steps_per_epoch = data.n_images // self.global_batch
        self.objective: nn.Module = _Objective(self)
        if dist.active:
            from torch.nn.parallel import DistributedDataParallel

            ids = [torch.device(device).index] if device.startswith("cuda") else None
            self.objective = DistributedDataParallel(self.objective, device_ids=ids)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lr_lambda(recipe, self.steps_per_epoch))
        self.bf16 = bf16
        self.epoch = 0
        self.history: list[dict[str, float]] = []
        self.flip_perm = torch.as_tensor(self.scheme.flip_perm)
        self.wall = 0.0
        self.extra: dict[str, Any] = {}      # more of the training record for the card (e.g. self-training)

    # -- checkpoints: torch.save of tensors and plain values only, read back with weights_only=True
    @property
    def ckpt_path(self) -> Path:
        return self.out_dir / "checkpoint.pt"

    def save_checkpoint(self) -> None:
        if not self.dist.main:          # every rank holds the same weights and optimiser state
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        state = {"model": self.model.state_dict(), "opt": self.opt.state_dict(), "sched": self.sched.state_dict(),
                 "epoch": self.epoch, "history": self.history, "wall": self.wall,
                 "aligner": self.aligner.state_dict() if self.aligner else None}
        tmp = self.ckpt_path.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.ckpt_path)      # a crash mid-write never leaves a broken checkpoint

    def load_checkpoint(self) -> bool:
        if not self.ckpt_path.exists():
            return False
        state = torch.load(self.ckpt_path, map_location=self.device, weights_only=True)
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["opt"])
        self.sched.load_state_dict(state["sched"])
        if self.aligner and state["aligner"]:
            self.aligner.load_state_dict(state["aligner"])
        self.epoch, self.history, self.wall = state["epoch"], state["history"], state["wall"]
        log.info("resumed %s at epoch %d", self.recipe.name, self.epoch)
        return True

    def loss(self, x: torch.Tensor, lms: torch.Tensor, coarse: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, dict[str, float]]:
        r = self.recipe
        if self.entry.arch == "pipnet":
            return pipnet_loss(self.model(x), lms, self.model.nb_idx, r.cls_weight, r.reg_weight, coarse)
        feats = self.model.forward_features(x)
        total = heatmap_loss(feats["heatmaps"], lms, r.heatmap_sigma, r.heatmap_fg_weight)
        parts = {"hm": total.item()}
        if self.teacher is not None and (r.fa_weight > 0 or r.fs_weight > 0):
            with torch.no_grad():
                t_feat = self.teacher.features(x).float()
            if self.aligner is not None:
                fa = self.aligner(feats["encoder"], t_feat)
                total = total + r.fa_weight * fa
                parts["fa"] = fa.item()
            if r.fs_weight > 0:
                fs = feature_similarity_loss(feats["encoder"], t_feat)
                total = total + r.fs_weight * fs
                parts["fs"] = fs.item()
        return total, parts

    def train_epoch(self, progress: bool = True) -> dict[str, float]:
        """One epoch. A global step takes `global_batch` faces of one shared per-epoch order; this rank runs its
        `accum` micro-batches of them, each with its own augmentation stream (slot j = rank * accum + a), so
        N ranks and one process accumulating N micro-batches see the same faces and the same augmentation."""
        r, d, b = self.recipe, self.data, self.recipe.batch_size
        self.model.train()
        seed = r.seed * 100003 + self.epoch                   # per-epoch seeds: resume is exact
        order = torch.randperm(d.n_images, generator=torch.Generator().manual_seed(seed))
        slots = range(self.dist.rank * self.accum, (self.dist.rank + 1) * self.accum)
        streams = {j: torch.Generator().manual_seed(seed * 1009 + 7919 * (j + 1)) for j in slots}
        pre = self.entry.preprocess
        t0, seen, total = time.perf_counter(), 0, 0.0
        bar = tqdm(range(self.steps_per_epoch), desc=f"{r.name} epoch {self.epoch + 1}/{r.epochs}",
                   disable=not (progress and self.dist.main), leave=False)
        for step in bar:
            self.opt.zero_grad(set_to_none=True)
            step_loss = 0.0
            for a, j in enumerate(slots):
                start = step * self.global_batch + j * b
                idx = order[start:start + b]
                img = d.images[idx].to(self.device, non_blocking=True)
                lms = d.landmarks[idx].to(self.device)
                coarse = d.coarse[idx].to(self.device) if d.coarse is not None else None
                x, lms = augment_batch(img, lms, r.augment, self.flip_perm, streams[j])
                x = normalise_tensor(x, pre.mean, pre.std).contiguous(memory_format=self.memory_format)
                last = a == self.accum - 1          # DDP averages gradients once, after the last micro-batch
                with nullcontext() if last or not self.dist.active else self.objective.no_sync():
                    with torch.autocast(self.device.split(":")[0], dtype=torch.bfloat16, enabled=self.bf16):
                        loss, parts = self.objective(x, lms, coarse)
                    (loss / self.accum).backward()
                step_loss += loss.item() / self.accum
                seen += len(idx)
            self.opt.step()
            self.sched.step()
            total += step_loss
            ips = seen * self.dist.world / (time.perf_counter() - t0)
            bar.set_postfix(loss=f"{step_loss:.4f}", ips=f"{ips:.1f}")
            if self.dist.main and (step + 1) % LOG_EVERY == 0:
                left = (self.steps_per_epoch - step - 1 + (r.epochs - self.epoch - 1) * self.steps_per_epoch)
                log.info("%s epoch %d step %d/%d: loss %.4f, %.1f img/s, ETA %s", r.name, self.epoch + 1, step + 1,
                         self.steps_per_epoch, step_loss, ips, _hms(left * self.global_batch / max(ips, 1e-6)))
        dt = time.perf_counter() - t0
        self.wall += dt
        self.epoch += 1
        rec = {"epoch": self.epoch, "loss": mean_across(total / self.steps_per_epoch, self.dist),
               "images_per_s": seen * self.dist.world / dt, "lr": self.sched.get_last_lr()[0], "seconds": dt}
        self.history.append(rec)
        log.info("%s epoch %d/%d: loss %.4f, %.1f img/s, ETA %s", r.name, self.epoch, r.epochs, rec["loss"],
                 rec["images_per_s"], _hms((r.epochs - self.epoch) * dt))
        return rec

    def fit(self, progress: bool = True) -> None:
        while self.epoch < self.recipe.epochs:
            self.train_epoch(progress)
            self.save_checkpoint()
            if self.dist.main:
                (self.out_dir / "history.json").write_text(json.dumps(self.history, indent=1))
            barrier(self.dist)              # nobody runs ahead of the checkpoint a resume would read
        self.model.to(memory_format=torch.contiguous_format)     # safetensors and ONNX export want contiguous

    def config(self) -> dict[str, Any]:
        e = self.entry
        return {"name": e.name, "arch": e.arch, "arch_args": e.arch_args, "scheme": e.scheme, "dataset": e.dataset,
                "preprocess": e.to_dict()["preprocess"], "license": e.license, "notes": e.notes,
                "params": sum(p.numel() for p in self.model.parameters()), "init": self.init_note,
                "imagenet_init": self.pretrained_file,
                "recipe": self.recipe.to_dict(),
                "training": {"epochs": self.epoch, "wall_time_s": round(self.wall, 1), "hardware": hardware(self.device),
                             "data": self.data.source, "bf16": self.bf16,
                             "images_per_s": round(float(np.median([h["images_per_s"] for h in self.history])), 1)
                             if self.history else None,
                             "final_loss": round(self.history[-1]["loss"], 5) if self.history else None,
                             "processes": self.dist.world, "accumulation": self.accum,
                             "global_batch": self.global_batch, "lr": self.lr, **self.extra}}
