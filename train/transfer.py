"""Start training from another model's weights, across landmark schemes when one maps onto the other.

Same scheme: every tensor, the mean face and neighbour indices included (so the neighbour heads keep their
meaning). A 68-point PIPNet into a 98-point one: the backbone, the score and offset heads of the 68 shared
points, and the neighbour-offset rows whose (landmark, neighbour) pair exists in both models; the other
rows keep their fresh initialisation. Another architecture with the same trunk (a PIPNet MobileNetV2 into
MobileFAN's encoder): the backbone tensors of matching name and shape only.
"""
from __future__ import annotations

import logging
from pathlib import Path

import torch

from zoo.schemes import get_scheme, embed_points

log = logging.getLogger(__name__)
_HEADS = ("cls_layer", "x_layer", "y_layer")
_NB_HEADS = ("nb_x_layer", "nb_y_layer")


def load_source(name_or_folder: str):
    """(state_dict, scheme name, arch) of a zoo entry or a model folder."""
    import zoo

    lm = (zoo.load_folder(name_or_folder, detector=None) if Path(name_or_folder).is_dir()
          else zoo.load(name_or_folder, detector=None))
    return {k: v.float() for k, v in lm.model.state_dict().items()}, lm.entry.scheme, lm.entry.arch


def init_from(model: torch.nn.Module, scheme: str, source: str) -> str:
    """Load `source`'s weights into `model` (scheme `scheme`); returns what was loaded, for the card."""
    state, src_scheme, src_arch = load_source(source)
    own = model.state_dict()
    same_arch = src_arch == ("pipnet" if hasattr(model, "nb_idx") else "mobilefan")
    if same_arch and get_scheme(src_scheme).name == get_scheme(scheme).name:
        model.load_state_dict(state)
        return f"all weights of `{source}`"
    if not same_arch:
        trunk = {k: v for k, v in state.items() if k.startswith("backbone.") and k in own and v.shape == own[k].shape}
        if not trunk:
            raise ValueError(f"{source} ({src_arch}) shares no backbone tensor with this model")
        model.load_state_dict(trunk, strict=False)
        log.info("initialised %d backbone tensors from %s", len(trunk), source)
        return f"`{source}`: its backbone ({len(trunk)} tensors of matching name and shape); the rest from scratch"
    n_src = get_scheme(src_scheme).num_points
    # dst index of each src point: embed 0..n-1 and read where each landed
    probe = embed_points(torch.arange(n_src, dtype=torch.float32)[:, None].repeat(1, 2).numpy(), src_scheme, scheme)
    dst_of = {int(v): i for i, v in enumerate(probe[:, 0]) if v == v}
    rows = torch.tensor([dst_of[i] for i in range(n_src)])
    copied = {k: v for k, v in state.items() if k.startswith("backbone.") and k in own}
    for head in _HEADS:
        for part in ("weight", "bias"):
            t = own[f"{head}.{part}"].clone()
            t[rows] = state[f"{head}.{part}"]
            copied[f"{head}.{part}"] = t
    src_nb, dst_nb = state["nb_idx"].long(), own["nb_idx"].long()
    k_src, k_dst = src_nb.shape[1], dst_nb.shape[1]
    pairs = 0
    for head in _NB_HEADS:
        for part in ("weight", "bias"):
            t = own[f"{head}.{part}"].clone()
            for i in range(n_src):
                for s, j in enumerate(src_nb[i].tolist()):
                    hit = (dst_nb[dst_of[i]] == dst_of[j]).nonzero()
                    if len(hit):
                        t[dst_of[i] * k_dst + int(hit[0])] = state[f"{head}.{part}"][i * k_src + s]
                        pairs += head == _NB_HEADS[0] and part == "weight"
            copied[f"{head}.{part}"] = t
    model.load_state_dict(copied, strict=False)
    log.info("initialised from %s: backbone, %d shared points' heads, %d neighbour pairs", source, n_src, pairs)
    return (f"`{source}`: its backbone, the score and offset heads of the {n_src} shared points, and {pairs} "
            f"neighbour-offset pairs present in both models; the other heads from scratch")
