"""WFLW: its annotation lists + WFLW_images/, in both of WFLW's list formats.

- `list_98pt_rect_attr_{train,test}.txt`: 196 coordinates (98 x y pairs), the face box x_min y_min x_max y_max,
  six 0/1 attribute flags (pose expression illumination make-up occlusion blur) and the image path relative to
  WFLW_images/.
- `list_98pt_<split>.txt` (WFLW's `list_98pt_test/` lists; the shared `test` and `fewshot_train`): 196
  coordinates then the image path; no box. Attributes come from the subset lists beside it,
  `list_98pt_<split>_{largepose,expression,illumination,makeup,occlusion,blur}.txt`, which repeat the lines
  of the faces in each subset.

A file's format is read from its lines (206 or 196 numbers before the path), not from its name.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .sample import Sample, as_landmarks

log = logging.getLogger(__name__)

ATTRIBUTES = ("pose", "expression", "illumination", "makeup", "occlusion", "blur")
# WFLW's subset-list names for the attributes (only pose differs).
LIST_NAMES = {"pose": "largepose", "expression": "expression", "illumination": "illumination",
              "makeup": "makeup", "occlusion": "occlusion", "blur": "blur"}
BASE_SPLITS = ("test", "train", "fewshot_train", "fewshot_fit", "fewshot_val")
# fewshot_train split by photo for choosing settings without the test faces: every 5th photo in sorted order
# (10 of the shared list's 51 photos) is held out as fewshot_val, the rest is fewshot_fit.
_HELD_OUT = {"fewshot_fit": ("fewshot_train", False), "fewshot_val": ("fewshot_train", True)}
_VAL_EVERY = 5
# A base split, an attribute subset of the test split ("pose"), or of any base ("fewshot_train_blur").
SPLITS = BASE_SPLITS + ATTRIBUTES + tuple(f"{b}_{a}" for b in BASE_SPLITS for a in ATTRIBUTES)
_RECT_DIR = "list_98pt_rect_attr_train_test"
_POINTS = 196
_RECT_NUMBERS = _POINTS + 4 + 6


def _first_file(candidates: list[Path]) -> Path | None:
    return next((c for c in candidates if c.is_file()), None)


def rect_attr_file(root: Path, which: str) -> Path | None:
    """The original `list_98pt_rect_attr_<which>.txt` (which: train or test), wherever WFLW puts it, or None."""
    name = f"list_98pt_rect_attr_{which}.txt"
    return _first_file([root / "WFLW_annotations" / _RECT_DIR / name, root / _RECT_DIR / name,
                        root / "WFLW_annotations" / name, root / name])


def plain_file(root: Path, split: str, attr: str | None = None) -> Path | None:
    """`list_98pt_<split>[_<subset>].txt` (196 coordinates + path), or None."""
    name = f"list_98pt_{split}" + (f"_{LIST_NAMES[attr]}" if attr else "") + ".txt"
    return _first_file([root / "WFLW_annotations" / name, root / "WFLW_annotations" / f"list_98pt_{split}" / name,
                        root / f"list_98pt_{split}" / name, root / name])


def annotation_file(root: Path, which: str) -> Path:
    """The list of base split `which`: the rect+attributes list when there is one, else the plain list."""
    found = (rect_attr_file(root, which) if which in ("train", "test") else None) or plain_file(root, which)
    if found is None:
        raise FileNotFoundError(f"{root}: no WFLW {which!r} list (list_98pt_rect_attr_{which}.txt or "
                                f"list_98pt_{which}.txt under WFLW_annotations/ or the root)")
    return found


def images_dir(root: Path) -> Path:
    for c in (root / "WFLW_images", root / "images"):
        if c.is_dir():
            return c
    return root


def parse_line(line: str, where: str) -> tuple[np.ndarray, np.ndarray | None, dict[str, int], str]:
    """(landmarks, box or None, attribute flags ({} without them), image path) of one line of either format."""
    parts = line.split()
    numeric = 0
    for p in parts:
        try:
            float(p)
        except ValueError:
            break
        numeric += 1
    if numeric not in (_POINTS, _RECT_NUMBERS) or numeric == len(parts):
        raise ValueError(f"{where}: expected {_POINTS} coordinates (or {_RECT_NUMBERS} numbers: coordinates, box, "
                         f"6 attribute flags) and then an image path; got {numeric} numbers and "
                         f"{len(parts) - numeric} other field(s)")
    nums = [float(v) for v in parts[:numeric]]
    landmarks = as_landmarks(nums[:_POINTS], 98, where)
    rel = " ".join(parts[numeric:])
    if numeric == _POINTS:
        return landmarks, None, {}, rel
    box = np.asarray(nums[_POINTS:_POINTS + 4], dtype=np.float32)
    flags = [int(round(v)) for v in nums[_POINTS + 4:]]
    if any(f not in (0, 1) for f in flags):
        raise ValueError(f"{where}: attribute flags {flags} should be 0 or 1")
    return landmarks, box, dict(zip(ATTRIBUTES, flags)), rel


def _face_key(landmarks: np.ndarray, rel: str) -> tuple:
    """Identifies one face across a list and its subset lists (the same line, maybe printed differently)."""
    return rel, tuple(np.round(landmarks.reshape(-1).astype(np.float64), 2))


def read_list(path: Path) -> list[tuple[np.ndarray, np.ndarray | None, dict[str, int], str]]:
    """Every face line of a WFLW list file, either format."""
    try:
        lines = path.read_text().splitlines()
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text annotation list") from None
    return [parse_line(line, f"{path}:{i + 1}") for i, line in enumerate(lines) if line.strip()]


def subset_flags(root: Path, split: str) -> dict[tuple, dict[str, int]] | None:
    """Face key -> the six attribute flags, from the subset lists of a plain split; None when it has none."""
    files = {a: plain_file(root, split, a) for a in ATTRIBUTES}
    if not any(files.values()):
        return None
    missing = [LIST_NAMES[a] for a, f in files.items() if f is None]
    if missing:
        log.warning("WFLW %s: no subset list for %s; those flags are 0", split, ", ".join(missing))
    members = {a: {_face_key(lm, rel) for lm, _, _, rel in read_list(f)} if f else set() for a, f in files.items()}
    keys = set().union(*members.values())
    return {k: {a: int(k in members[a]) for a in ATTRIBUTES} for k in keys}


def split_parts(split: str) -> tuple[str, str | None]:
    """"test" -> ("test", None); "pose" / "test_pose" / "test_largepose" -> ("test", "pose")."""
    s = split.lower()
    aliases = {**{a: a for a in ATTRIBUTES}, **{v: k for k, v in LIST_NAMES.items()}}
    if s in BASE_SPLITS:
        return s, None
    if s in aliases:
        return "test", aliases[s]
    for base in BASE_SPLITS:
        rest = s.removeprefix(base + "_")
        if rest != s and rest in aliases:
            return base, aliases[rest]
    raise ValueError(f"unknown WFLW split {split!r}; choose from {list(BASE_SPLITS)}, an attribute "
                     f"{list(ATTRIBUTES)} (of test), or BASE_ATTRIBUTE such as fewshot_train_blur")


def read_wflw(root: str | Path, split: str = "test") -> list[Sample]:
    """Samples of a WFLW split (test, train, fewshot_train) or an attribute subset of one, in file order;
    `Sample.attributes` holds the six flags when the list or its subset lists give them."""
    root = Path(root)
    base, attr = split_parts(split)
    if base in _HELD_OUT:
        parent, held_out = _HELD_OUT[base]
        every = read_wflw(root, parent)
        samples = read_wflw(root, f"{parent}_{attr}") if attr else every
        photos = sorted({s.image_path for s in every})
        val = set(photos[_VAL_EVERY // 2::_VAL_EVERY])
        return [s for s in samples if (s.image_path in val) == held_out]
    ann = annotation_file(root, base)
    img_dir = images_dir(root)
    faces = read_list(ann)
    flags = subset_flags(root, base) if faces and faces[0][1] is None else None
    samples: list[Sample] = []
    missing = 0
    for landmarks, box, attrs, rel in faces:
        if flags is not None:
            attrs = flags.get(_face_key(landmarks, rel), dict.fromkeys(ATTRIBUTES, 0))
        if attr is not None and attrs.get(attr) != 1:
            continue
        path = img_dir / rel
        if not path.is_file():
            missing += 1
            continue
        samples.append(Sample(path, landmarks, box, base, dict(attrs)))
    if missing:
        log.warning("WFLW %s: %d images listed in %s are missing under %s; skipped", split, missing, ann, img_dir)
    if attr is not None and faces and not faces[0][2] and flags is None:
        raise ValueError(f"WFLW split {split!r}: {ann} has no attribute flags and no subset lists beside it")
    if not samples:
        raise ValueError(f"WFLW split {split!r}: no samples (annotations {ann}, images {img_dir})")
    return samples
