"""Convert a PyTorch checkpoint (.pth/.pt) into safetensors without unpickling arbitrary objects.

CLI: ``python -m zoo.convert SRC DST [--strip-prefix module.] [--fp16]`` prints the output's sha256.
"""
from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import torch
from safetensors.torch import save_file

from .files import RECORD_KEY, check_record, sha256_file  # noqa: F401  (re-exported)

logger = logging.getLogger(__name__)
def _extract_state_dict(obj: object, name: str) -> dict[str, torch.Tensor]:
    # Training scripts often wrap the weights: {"state_dict": ...} (Lightning) or {"model": ...}.
    if isinstance(obj, dict):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj:
        raise ValueError(f"{name}: not a checkpoint (no state_dict found)")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise ValueError(f"{name}: not a checkpoint (non-tensor entries such as {bad[0]!r})")
    return obj


def read_checkpoint(src: Path) -> dict[str, torch.Tensor]:
    """The state_dict in a .pth/.pt file, read with torch.load(weights_only=True) (nothing else is unpickled).

    Raises OSError for a missing/unreadable file and ValueError naming the file when it is not a checkpoint.
    """
    src = Path(src)
    try:
        obj = torch.load(src, weights_only=True, map_location="cpu")
    except OSError:
        raise  # a missing/unreadable file is not a format problem
    except Exception as exc:  # torch raises many types (UnpicklingError, RuntimeError, EOFError...)
        raise ValueError(f"{src.name}: not a loadable PyTorch checkpoint ({exc.__class__.__name__})") from exc
    return _extract_state_dict(obj, src.name)


def convert_checkpoint(
    src: Path, dst: Path, strip_prefix: str = "module.", dtype: torch.dtype | None = None
) -> dict:
    """Read ``src`` with torch.load(weights_only=True), write safetensors to ``dst``.

    Strips ``strip_prefix`` from keys, casts floating tensors to ``dtype`` when given (integer buffers
    such as BatchNorm's num_batches_tracked keep their type). Returns
    {"sha256": hex of dst, "num_params": elements in floating tensors, "keys": number of tensors}.
    Raises ValueError naming the file when it is not a checkpoint.
    """
    src, dst = Path(src), Path(dst)
    state = read_checkpoint(src)
    tensors: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        key = key.removeprefix(strip_prefix) if strip_prefix else key
        if key in tensors:
            raise ValueError(f"{src.name}: key {key!r} collides after stripping {strip_prefix!r}")
        if dtype is not None and value.is_floating_point():
            value = value.to(dtype)
        # safetensors refuses views and shared storage, so every tensor gets its own contiguous copy.
        tensors[key] = value.detach().contiguous().clone()

    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".tmp")
    # Write then rename so an interrupted conversion never leaves a truncated file at dst.
    save_file(tensors, str(tmp), metadata={"format": "pt"})   # bytes depend on the tensors alone: pinnable
    os.replace(tmp, dst)

    info = {
        "sha256": sha256_file(dst),
        "num_params": sum(t.numel() for t in tensors.values() if t.is_floating_point()),
        "keys": len(tensors),
    }
    logger.info("converted %s -> %s (%d keys, %d params)", src.name, dst, info["keys"], info["num_params"])
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zoo.convert", description=__doc__.splitlines()[0])
    parser.add_argument("src", type=Path, help="PyTorch checkpoint (.pth / .pt)")
    parser.add_argument("dst", type=Path, help="output .safetensors")
    parser.add_argument("--strip-prefix", default="module.", help="key prefix to remove ('' for none)")
    parser.add_argument("--fp16", action="store_true", help="store floating tensors as float16")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        info = convert_checkpoint(args.src, args.dst, args.strip_prefix, torch.float16 if args.fp16 else None)
    except (ValueError, OSError) as exc:
        parser.exit(1, f"error: {exc}\n")
    print(info["sha256"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
