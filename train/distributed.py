"""Data-parallel training across processes: `torchrun --nproc_per_node N -m train NAME ...`.

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK; we join the process group (NCCL on CUDA, gloo on CPU) and
every other piece of training asks this module who it is. A plain `python -m train` run is world size 1
and never touches torch.distributed.
"""
from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0 alone writes checkpoints, logs progress and writes the final folder."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


SINGLE = DistInfo()


def init_from_env(device: str) -> tuple[DistInfo, str]:
    """Join the process group torchrun describes (if any); returns who we are and this rank's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return SINGLE, device
    info = DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    cuda = device.startswith("cuda")
    if cuda:
        device = f"cuda:{info.local_rank}"
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    if not info.main:
        logging.getLogger().setLevel(logging.WARNING)     # one rank speaks
    log.info("distributed: %d processes (%s)", world, dist.get_backend())
    return info, device


def barrier(info: DistInfo) -> None:
    if info.active:
        dist.barrier()


@contextmanager
def main_first(info: DistInfo) -> Iterator[None]:
    """Rank 0 runs the block first (e.g. builds the crop cache), the others after it, reading its result."""
    if not info.main:
        barrier(info)
    yield
    if info.main:
        barrier(info)


def mean_across(value: float, info: DistInfo) -> float:
    """The mean of a logged number over ranks (each rank saw its own shard)."""
    if not info.active:
        return value
    t = torch.tensor([value], dtype=torch.float64, device="cuda" if dist.get_backend() == "nccl" else "cpu")
    dist.all_reduce(t)
    return float(t.item()) / info.world


def shutdown(info: DistInfo) -> None:
    if info.active and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
