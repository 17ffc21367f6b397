"""Writers of small dataset fixtures in each dataset's own on-disk format, built from the real samples
in shared/ (data/samples/* COCO-style json, data/300w). Not a test module: tests import these helpers.

Every writer returns the dataset root plus what a reader must give back, in 0-based pixels.
"""
from __future__ import annotations

import csv
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SAMPLES = SHARED / "data" / "samples"
W300 = SHARED / "data" / "300w"
W300_FOLDERS = ("afw", "helen/trainset", "lfpw/trainset", "helen/testset", "lfpw/testset")


def have_samples(name: str) -> bool:
    return (SAMPLES / name).is_dir()


def have_300w() -> bool:
    return all((W300 / f).is_dir() for f in W300_FOLDERS)


@dataclass
class Face:
    """One annotation of a sample json: 0-based landmarks, COCO visibility, bbox x y w h."""
    file_name: str
    image: Path
    landmarks: np.ndarray      # (N, 2) float64
    visibility: np.ndarray     # (N,)
    bbox: np.ndarray           # (4,) x y w h
    extra: dict


def load_faces(name: str) -> list[Face]:
    """The faces of shared/data/samples/NAME/*.json, in annotation order."""
    folder = SAMPLES / name
    doc = json.loads(next(folder.glob("*.json")).read_text())
    files = {im["id"]: im["file_name"] for im in doc["images"]}
    faces = []
    for a in doc["annotations"]:
        kp = np.asarray(a["keypoints"], dtype=np.float64).reshape(-1, 3)
        extra = {k: a[k] for k in ("center", "scale", "box_size") if k in a}
        fn = files[a["image_id"]]
        faces.append(Face(fn, folder / fn, kp[:, :2], kp[:, 2], np.asarray(a["bbox"], dtype=np.float64), extra))
    return faces


# ---------------------------------------------------------------- 300-W

def write_300w(tmp: Path, per_folder: int = 2) -> Path:
    """Copy the first `per_folder` faces of each 300-W folder into tmp/300w (original iBUG layout)."""
    root = tmp / "300w"
    for sub in W300_FOLDERS:
        dst = root / sub
        dst.mkdir(parents=True, exist_ok=True)
        for pts in sorted((W300 / sub).glob("*.pts"))[:per_folder]:
            shutil.copy(pts, dst / pts.name)
            shutil.copy(pts.with_suffix(".jpg"), dst / (pts.stem + ".jpg"))
    return root


# ---------------------------------------------------------------- WFLW

# Attribute flags per face (pose expression illumination make-up occlusion blur), chosen so that every
# subset has a known, different size.
WFLW_FLAGS = ([1, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0], [1, 0, 1, 1, 1, 0])


def wflw_line(face: Face, flags: list[int], rel: str) -> str:
    x, y, w, h = face.bbox
    box = [int(np.floor(x)), int(np.floor(y)), int(np.ceil(x + w)), int(np.ceil(y + h))]
    nums = [f"{v:.6f}" for v in face.landmarks.reshape(-1)] + [str(v) for v in box] + [str(f) for f in flags]
    return " ".join(nums + [rel])


def wflw_image(root: Path, face: Face) -> str:
    """Copy the face's photo to WFLW_images/EVENT--NAME/FILE as WFLW lays it out; its path in the lists."""
    event, name = face.file_name.split("_")[:2]
    rel = f"{event}--{name}/{face.file_name}"
    img = root / "WFLW_images" / rel
    img.parent.mkdir(parents=True, exist_ok=True)
    if not img.exists():
        shutil.copy(face.image, img)
    return rel


def write_wflw(tmp: Path, flat: bool = False) -> tuple[Path, list[Face]]:
    """WFLW_annotations/list_98pt_rect_attr_train_test/*.txt + WFLW_images/EVENT/NAME.jpg; `flat` puts the
    txt files at the root instead. Test list: all faces with WFLW_FLAGS; train list: the first two."""
    root = tmp / ("wflw_flat" if flat else "wflw")
    faces = load_faces("wflw")
    lines = []
    for face, flags in zip(faces, WFLW_FLAGS):
        lines.append(wflw_line(face, flags, wflw_image(root, face)))
    ann = root if flat else root / "WFLW_annotations" / "list_98pt_rect_attr_train_test"
    ann.mkdir(parents=True, exist_ok=True)
    (ann / "list_98pt_rect_attr_test.txt").write_text("\n".join(lines) + "\n")
    (ann / "list_98pt_rect_attr_train.txt").write_text("\n".join(lines[:2]) + "\n")
    return root, faces


def write_wflw_plain(tmp: Path, layout: str = "shared") -> tuple[Path, list[Face]]:
    """WFLW's other list format: list_98pt_test.txt (196 coordinates + path, no box or flags) with its six
    subset lists (list_98pt_test_largepose.txt, ...) from WFLW_FLAGS, and list_98pt_fewshot_train.txt (the
    first two faces, no subset lists). layout "shared": the files in WFLW_annotations/ (../shared/data/wflw);
    "original": in WFLW_annotations/list_98pt_test/ as WFLW ships its test lists."""
    root = tmp / f"wflw_plain_{layout}"
    faces = load_faces("wflw")
    lines = []
    for face in faces:
        lines.append(" ".join([f"{v:.6f}" for v in face.landmarks.reshape(-1)] + [wflw_image(root, face)]))
    ann = root / "WFLW_annotations" / ("list_98pt_test" if layout == "original" else "")
    ann.mkdir(parents=True, exist_ok=True)
    (ann / "list_98pt_test.txt").write_text("\n".join(lines) + "\n")
    for k, name in enumerate(("largepose", "expression", "illumination", "makeup", "occlusion", "blur")):
        chosen = [line for line, flags in zip(lines, WFLW_FLAGS) if flags[k]]
        (ann / f"list_98pt_test_{name}.txt").write_text("".join(line + "\n" for line in chosen))
    (root / "WFLW_annotations" / "list_98pt_fewshot_train.txt").write_text("\n".join(lines[:2]) + "\n")
    return root, faces


# ---------------------------------------------------------------- COFW

def _cofw_arrays(faces: list[Face]) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Images (the second one grey, as some COFW faces are), phis (N, 87), bboxes (N, 4), 1-based."""
    images, phis, boxes = [], [], []
    for i, f in enumerate(faces):
        im = Image.open(f.image)
        images.append(np.asarray(im.convert("L" if i == 1 else "RGB"), dtype=np.uint8))
        occluded = (f.visibility == 1).astype(np.float64)     # COCO v=1: labelled, not visible
        phis.append(np.concatenate([f.landmarks[:, 0] + 1, f.landmarks[:, 1] + 1, occluded]))
        x, y, w, h = f.bbox
        boxes.append([x + 1, y + 1, w, h])
    return images, np.asarray(phis), np.asarray(boxes, dtype=np.float64)


def _mat73_header() -> bytes:
    text = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
    return text.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM"


def write_cofw_v73(root: Path, split: str, faces: list[Face]) -> Path:
    """A MATLAB v7.3 style file: HDF5 with a 512-byte MAT header, arrays transposed, images as object
    references into #refs#, as MATLAB's save -v7.3 writes COFW_*_color.mat."""
    import h5py

    keys = {"train": ("IsTr", "phisTr", "bboxesTr"), "test": ("IsT", "phisT", "bboxesT")}[split]
    images, phis, boxes = _cofw_arrays(faces)
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"COFW_{split}_color.mat"
    with h5py.File(path, "w", userblock_size=512) as f:
        refs_group = f.create_group("#refs#")
        refs = []
        for i, im in enumerate(images):
            ds = refs_group.create_dataset(f"im{i}", data=im.T)     # MATLAB column-major: reversed dims
            ds.attrs["MATLAB_class"] = np.bytes_("uint8")
            refs.append(ds.ref)
        cell = f.create_dataset(keys[0], data=np.asarray(refs, dtype=h5py.ref_dtype).reshape(1, -1),
                                dtype=h5py.ref_dtype)
        cell.attrs["MATLAB_class"] = np.bytes_("cell")
        for key, arr in ((keys[1], phis), (keys[2], boxes)):
            ds = f.create_dataset(key, data=arr.T)
            ds.attrs["MATLAB_class"] = np.bytes_("double")
    with open(path, "r+b") as fh:
        fh.write(_mat73_header())
    return path


def write_cofw_v5(root: Path, split: str, faces: list[Face]) -> Path:
    """An older-format (v5) .mat written by scipy.io.savemat: images in a cell array (N, 1)."""
    from scipy.io import savemat

    keys = {"train": ("IsTr", "phisTr", "bboxesTr"), "test": ("IsT", "phisT", "bboxesT")}[split]
    images, phis, boxes = _cofw_arrays(faces)
    cell = np.empty((len(images), 1), dtype=object)
    for i, im in enumerate(images):
        cell[i, 0] = im
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"COFW_{split}_color.mat"
    savemat(str(path), {keys[0]: cell, keys[1]: phis, keys[2]: boxes})
    return path


def write_cofw(tmp: Path, flavour: str = "v73") -> tuple[Path, list[Face]]:
    """COFW_test_color.mat (both faces) and COFW_train_color.mat (faces reversed), v73 or v5."""
    faces = load_faces("cofw")
    root = tmp / f"cofw_{flavour}"
    writer = write_cofw_v73 if flavour == "v73" else write_cofw_v5
    writer(root, "test", faces)
    writer(root, "train", faces[::-1])
    return root, faces


# ---------------------------------------------------------------- AFLW

AFLW_HEADER = ["image_name", "scale", "box_size", "center_w", "center_h"] + \
    [f"original_{i + 1}_{c}" for i in range(19) for c in "xy"]


def aflw_row(face: Face) -> list[str]:
    e = face.extra
    return [face.file_name, f"{e['scale']}", f"{e['box_size']}", f"{e['center'][0]}", f"{e['center'][1]}"] + \
        [f"{v:.6f}" for v in face.landmarks.reshape(-1)]


def write_aflw(tmp: Path) -> tuple[Path, list[Face]]:
    """face_landmarks_aflw_{train,test,test_frontal}.csv + images/: test holds both faces, frontal the
    first, train the second."""
    faces = load_faces("aflw")
    root = tmp / "aflw"
    (root / "images").mkdir(parents=True, exist_ok=True)
    for f in faces:
        shutil.copy(f.image, root / "images" / f.file_name)

    def write(name: str, chosen: list[Face]) -> None:
        with open(root / name, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(AFLW_HEADER)
            w.writerows(aflw_row(f) for f in chosen)

    write("face_landmarks_aflw_test.csv", faces)
    write("face_landmarks_aflw_test_frontal.csv", faces[:1])
    write("face_landmarks_aflw_train.csv", faces[1:])
    return root, faces
