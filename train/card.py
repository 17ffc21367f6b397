"""The training part of a model card, from a folder's config.json (recipe + training record)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .recipes import FEWSHOT_NOTE, SCRATCH_NOTE


# Which features the two distillation losses compare, and why those (train/losses.py).
DISTILL_LAYERS = (
    "Both losses compare the student's encoder output (MobileNetV2 up to its 320-channel block, stride 32: 8x8 "
    "at 256 px) with the teacher's backbone output (the PIPNet trunk's last stage, stride 32: 8x8, 512 channels "
    "for ResNet18): the map every PIPNet head reads, at the same resolution, so feature-aligned distillation "
    "needs only a 1x1 convolution + BatchNorm to the teacher's channels, and feature similarity compares the "
    "8x8 position-by-position cosine matrices, which ignore channel counts.")


def training_markdown(config: dict[str, Any]) -> str:
    r, t = config.get("recipe", {}), config.get("training", {})
    lines = ["## Training", "",
             f"- Recipe `{config.get('name')}` (train/recipes.py): {t.get('epochs')} epochs, {batch_text(r, t)}, "
             f"{r.get('optimizer')} lr {t.get('lr', r.get('lr'))}, weight decay {r.get('weight_decay')}, {r.get('schedule')} "
             f"schedule, ImageNet init: {r.get('pretrained')}.",
             f"- Augmentation: {r.get('augment')}.",
             f"- Data: {t.get('data')}.",
             f"- Hardware: {t.get('hardware')}; bf16 autocast: {t.get('bf16')}; wall time "
             f"{(t.get('wall_time_s') or 0) / 60:.0f} min; median {t.get('images_per_s')} images/s; "
             f"final loss {t.get('final_loss')}."]
    if r.get("partial"):
        lines.append(f"- {FEWSHOT_NOTE}")
    elif not r.get("pretrained", True) and not config.get("init"):
        lines.append(f"- {SCRATCH_NOTE}")
    if config.get("init"):
        lines.append(f"- Started from {config['init']}.")
    st = t.get("self_training")
    if st:
        c = st["curriculum"]
        lines.append(f"- Self-training round {st['round']} of {st['of']} (train/selftrain.py) from `{st.get('start')}`: "
                     f"{st['photos']} unlabelled "
                     f"photos ({st['unlabeled']}), {st['labelled_faces']} faces detected at >= {c['min_face']} px and "
                     f"pseudo-labelled by the previous round's model, the {st['kept']} most reliable kept (flip "
                     f"disagreement <= {c['max_disagreement']} of the inter-ocular distance; curriculum shares "
                     f"{c['keep']}, score map only in the first {c['coarse_rounds']} round(s)); "
                     f"{c['epochs']} epochs at lr {c['lr']} on them and the labelled data. No test image is used.")
        if st.get("start_record"):
            s0 = st["start_record"]
            lines.append(f"- The starting model (round 0): {s0['epochs']} epochs of this recipe on {s0['data']}, "
                         f"started from {s0['init']}.")
    for pool in r.get("pseudo") or []:
        lines.append(pseudo_label_note(Path(pool)))
    if t.get("commands"):
        lines.append("- Reproduce: " + ", then ".join(f"`{c}`" for c in t["commands"]) + ".")
    if r.get("teacher") and (r.get("fa_weight") or r.get("fs_weight")):
        lines.append(f"- Distillation from `{r['teacher']}`: feature-aligned weight {r.get('fa_weight')}, "
                     f"feature-similarity weight {r.get('fs_weight')}. {DISTILL_LAYERS}")
    if r.get("heatmap_fg_weight"):
        lines.append(f"- Heatmap loss: MSE with each pixel weighted 1 + {r['heatmap_fg_weight']} x target (the peaks "
                     f"count more; plain MSE left all-zero maps after a CPU-length schedule).")
    return "\n".join(lines) + "\n"


def batch_text(recipe: dict[str, Any], training: dict[str, Any]) -> str:
    """The global batch and how the learning rate followed it (linear scaling from one device's batch)."""
    per, procs, accum = recipe.get("batch_size"), training.get("processes", 1), training.get("accumulation", 1)
    if procs * accum == 1:
        return f"batch {per}"
    return (f"global batch {training.get('global_batch')} ({per} per device x {procs} process(es) x {accum} "
            f"accumulated), learning rate scaled linearly from {recipe.get('lr')} to {training.get('lr')}")


def pseudo_label_note(pool: Path) -> str:
    """Whose labels a peer-taught model learned from, from the pool's summary.json (train.teachers)."""
    summary = pool.parent / "summary.json"
    if not summary.is_file():
        return f"- Peer-taught: pseudo-labels from `{pool}` (its summary.json was not found at publishing time)."
    d = json.loads(summary.read_text())
    val = ", ".join(f"{k} {100 * v:.2f}%" for k, v in d.get("val_nme", {}).items())
    return (f"- **Peer-taught: this model learned from labels made by other models**, {' and '.join(d['teachers'])}, "
            f"combined per point with reliability weights (agreement between the teachers and with their mirror "
            f"image): {d['kept']} faces kept of {d['faces']} ({d['kept_unlabelled']} from unlabelled photos; the "
            f"rest are labelled training faces whose missing points the teachers filled). The teachers' NME on "
            f"held-out faces ({' + '.join(d.get('val', []))}): {val}. No test photo is in the pool. "
            f"Pool: `{d.get('command', '')}`.")
