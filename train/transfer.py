"""Start training from another model's weights, across landmark schemes when one maps onto the other.

Same architecture and scheme: every tensor, the mean face and neighbour indices included (so the neighbour
heads keep their meaning). A 68-point PIPNet into a 98-point one: the backbone, the score and offset heads of
the 68 shared points, and the neighbour-offset rows whose (landmark, neighbour) pair exists in both models;
the other rows keep their fresh initialisation. Another architecture with the same trunk (a PIPNet
MobileNetV2 into MobileFAN's encoder): the backbone tensors of matching name and shape only.
"""
from __future__ import annotations

import logging

import torch

from zoo.schemes import embedding, get_scheme

log = logging.getLogger(__name__)
_HEADS = ("cls_layer", "x_layer", "y_layer")
_NB_HEADS = ("nb_x_layer", "nb_y_layer")


def load_source(name_or_folder: str):
    """(state_dict, scheme name, arch) of a zoo entry or a model folder."""
    from .evaluate import load_landmarker

    lm = load_landmarker(name_or_folder, detector=None)
    return {k: v.float() for k, v in lm.model.state_dict().items()}, lm.entry.scheme, lm.entry.arch


def neighbour_rows(src_nb: torch.Tensor, dst_nb: torch.Tensor, dst_of: tuple[int, ...]) -> list[tuple[int, int]]:
    """(dst row, src row) of the neighbour-offset heads for every (landmark, neighbour) pair both models have."""
    k_src, k_dst = src_nb.shape[1], dst_nb.shape[1]
    pairs = []
    for i, row in enumerate(src_nb.tolist()):
        dst_row = dst_nb[dst_of[i]].tolist()
        for s, j in enumerate(row):
            if dst_of[j] in dst_row:
                pairs.append((dst_of[i] * k_dst + dst_row.index(dst_of[j]), i * k_src + s))
    return pairs


def init_from(model: torch.nn.Module, arch: str, scheme: str, source: str) -> str:
    """Load `source`'s weights into `model` (architecture `arch`, scheme `scheme`); returns what was loaded,
    for the card."""
    state, src_scheme, src_arch = load_source(source)
    own = model.state_dict()
    if src_arch == arch and get_scheme(src_scheme).name == get_scheme(scheme).name:
        model.load_state_dict(state)
        return f"all weights of `{source}`"
    copied = {k: v for k, v in state.items() if k.startswith("backbone.") and k in own and v.shape == own[k].shape}
    if not copied:
        raise ValueError(f"{source} ({src_arch}) shares no backbone tensor with this model")
    if src_arch != arch:
        model.load_state_dict(copied, strict=False)
        log.info("initialised %d backbone tensors from %s", len(copied), source)
        return f"`{source}`: its backbone ({len(copied)} tensors of matching name and shape); the rest from scratch"
    dst_of = embedding(src_scheme, scheme)
    pairs = neighbour_rows(state["nb_idx"].long(), own["nb_idx"].long(), dst_of)

    def copy_rows(heads: tuple[str, ...], dst_rows: list[int], src_rows: list[int]) -> None:
        for key in (f"{h}.{part}" for h in heads for part in ("weight", "bias")):
            t = own[key].clone()
            t[dst_rows] = state[key][src_rows]
            copied[key] = t

    copy_rows(_HEADS, list(dst_of), list(range(len(dst_of))))
    copy_rows(_NB_HEADS, [d for d, _ in pairs], [s for _, s in pairs])
    model.load_state_dict(copied, strict=False)
    n_src = len(dst_of)
    log.info("initialised from %s: backbone, %d shared points' heads, %d neighbour pairs", source, n_src, len(pairs))
    return (f"`{source}`: its backbone, the score and offset heads of the {n_src} shared points, and {len(pairs)} "
            f"neighbour-offset pairs present in both models; the other heads from scratch")
