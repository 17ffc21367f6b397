"""Files on this machine: model folders (weights, config, card), the user's folder ($ZOO_HOME), bundled files,
sha256 pins and conversion records. The floor that the Hub client (hub.py) and the converters (convert.py,
pipnet_release.py) both build on; it imports nothing of theirs."""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from .registry import Entry, ZooError

logger = logging.getLogger(__name__)

BUNDLED_DIR = Path(__file__).parent / "weights"
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
CARD_NAME = "README.md"
FOLDER_FILES = (WEIGHTS_NAME, CONFIG_NAME, CARD_NAME)
# The key of a conversion's record in its folder's config.json: source file and sha256, and the sha256 of the
# model.safetensors written beside it (see check_record).
RECORD_KEY = "converted"


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def local_dir() -> Path:
    """The user's folder for converted/trained weights: ``$ZOO_HOME`` or ``~/.cache/facezoo``."""
    home = os.environ.get("ZOO_HOME")
    return Path(home).expanduser() if home else Path.home() / ".cache" / "facezoo"


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)  # an interrupted write never leaves a truncated file behind


def save_folder(folder: str | os.PathLike, state_dict: dict[str, torch.Tensor], config: dict[str, Any],
                card: str, fp16: bool = False) -> Path:
    """Write ``model.safetensors``, ``config.json`` and ``README.md`` into ``folder``; return the folder.

    Tensors are detached, moved to the CPU and made contiguous (each with its own storage, as safetensors
    requires). ``fp16=True`` stores floating tensors as float16; integer buffers (BatchNorm's
    num_batches_tracked) keep their dtype. ``config`` is written with indent 2 and sorted keys.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if not isinstance(value, torch.Tensor):
            raise ZooError(f"state_dict[{key!r}] is a {type(value).__name__}, not a tensor")
        t = value.detach().to("cpu")
        if fp16 and t.is_floating_point():
            t = t.to(torch.float16)
        tensors[key] = t.contiguous().clone()
    weights = folder / WEIGHTS_NAME
    tmp = weights.with_name(weights.name + ".tmp")
    save_file(tensors, str(tmp), metadata={"format": "pt"})
    os.replace(tmp, weights)
    _write_atomic(folder / CONFIG_NAME, (json.dumps(config, indent=2, sort_keys=True) + "\n").encode())
    _write_atomic(folder / CARD_NAME, (card if card.endswith("\n") else card + "\n").encode())
    return folder


def load_folder(folder: str | os.PathLike) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(config, state_dict) of a model folder; floating tensors come back as float32.

    Raises ZooError naming the file when config.json or model.safetensors is missing or unreadable.
    """
    folder = Path(folder)
    config_path, weights = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    for path in (config_path, weights):
        if not path.is_file():
            raise ZooError(f"{path}: missing; a model folder holds {', '.join(FOLDER_FILES)} "
                           "(zoo.hub.save_folder writes them)")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ZooError(f"{config_path}: not valid JSON ({exc})") from exc
    if not isinstance(config, dict):
        raise ZooError(f"{config_path}: expected a JSON object, found {type(config).__name__}")
    try:
        state = load_file(str(weights), device="cpu")
    except Exception as exc:  # safetensors raises SafetensorError, OSError, ValueError... for bad files
        raise ZooError(f"{weights}: not a readable safetensors file ({exc.__class__.__name__}: {exc})") from exc
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    return config, state


def local_candidates(entry: Entry) -> list[tuple[str, Path]]:
    """Where an entry's file may lie on this machine: inside the package, then in the user's folder. A pinned
    variant `base.tag` (e.g. a detector run at another input size) also looks in its base's folders; the pin
    decides whether a file found there is its own."""
    names = [entry.name]
    if "." in entry.name and entry.hub.sha256:
        names.append(entry.name.split(".", 1)[0])
    return [(where, root / n / entry.hub.filename) for n in names
            for where, root in (("bundled", BUNDLED_DIR), ("local", local_dir()))]


def on_disk(entry: Entry) -> Path | None:
    """The bundled or user-folder file of ``entry``, or None (no Hub, no hashing: cheap for listings)."""
    return next((path for _, path in local_candidates(entry) if path.is_file()), None)


def check_record(entry_name: str, weights: Path) -> dict | None:
    """The conversion record in the config.json beside ``weights``, or None when there is none.

    Converted weights are not pinned by the registry (that pin is for the zoo's own files); `zoo convert`
    records the sha256 of the file it wrote, and a file that no longer matches it is refused (ZooError)."""
    config_path = Path(weights).with_name("config.json")
    try:
        record = json.loads(config_path.read_text(encoding="utf-8")).get(RECORD_KEY)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return None
    if not isinstance(record, dict):
        return None
    how = f"convert it again (`{record.get('command') or 'python -m zoo convert ' + entry_name}`)"
    if record.get("entry") != entry_name:
        raise ZooError(f"{weights}: converted for {record.get('entry')!r}, not {entry_name!r} ({config_path}); {how}")
    actual = sha256_file(weights)
    if actual != record.get("weights_sha256"):
        raise ZooError(f"{weights}: sha256 {actual} does not match the {record.get('weights_sha256')} recorded "
                       f"in {config_path} when it was converted; refusing to load it; {how}")
    return record


