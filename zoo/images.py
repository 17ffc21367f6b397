"""Safe image loading: any path, PIL image or array in, RGB uint8 (H, W, 3) out, or a ZooError that says
which input is wrong and how."""
from __future__ import annotations

import re
import struct
import warnings
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageOps

from .registry import ZooError

MAX_PIXELS = 64_000_000          # decompression-bomb guard: about 8000 x 8000
ImageInput = Union[str, Path, Image.Image, np.ndarray]


def _to_rgb(img: Image.Image, label: str) -> np.ndarray:
    img = ImageOps.exif_transpose(img)          # phones store rotation in EXIF, not in the pixels
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if arr.max() > 255 else 255.0
        img = Image.fromarray(np.clip(arr / hi * 255.0, 0, 255).astype(np.uint8))
    elif img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        img = Image.fromarray(np.clip(arr * (255.0 if arr.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8))
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        bg = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(bg, img)   # transparent areas become white, not black
    rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
    if rgb.shape[0] < 8 or rgb.shape[1] < 8:
        raise ZooError(f"{label}: image is {rgb.shape[1]}x{rgb.shape[0]} pixels, too small for a face")
    return np.ascontiguousarray(rgb)


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm"}


def image_files(folder: Path) -> list[Path]:
    """Every image file under `folder` (recursively), sorted."""
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def load_image(image: ImageInput, color: str = "rgb") -> np.ndarray:
    """RGB uint8 (H, W, 3). Arrays are taken as RGB unless color="bgr" (OpenCV's order)."""
    if isinstance(image, (str, Path)):
        return read_image_file(Path(image))
    if isinstance(image, Image.Image):
        if image.width * image.height > MAX_PIXELS:
            raise ZooError(f"image of {image.width}x{image.height} pixels is over the {MAX_PIXELS:,} pixel limit")
        return _to_rgb(image, "image")
    if isinstance(image, np.ndarray):
        return array_to_rgb(image, color)
    raise ZooError(f"unsupported image input of type {type(image).__name__}: give a path, PIL image or numpy array")


def read_image_file(path: Path) -> np.ndarray:
    label = str(path)
    if not path.exists():
        raise ZooError(f"{label}: no such file")
    if path.is_dir():
        raise ZooError(f"{label}: is a folder, not an image")
    if path.stat().st_size == 0:
        raise ZooError(f"{label}: file is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                if img.width * img.height > MAX_PIXELS:
                    raise ZooError(f"{label}: image too large: {img.width}x{img.height} pixels is over the "
                                   f"{MAX_PIXELS:,} pixel limit (decompression-bomb guard); resize it first")
                img.load()
                return _to_rgb(img, label)
    except ZooError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        declared = re.search(r"\((\d+) pixels\)", str(e))      # PIL's own limit is not ours: say only ours
        size = f"{int(declared.group(1)):,} pixels" if declared else "its declared size"
        raise ZooError(f"{label}: image too large: {size} is over the {MAX_PIXELS:,} pixel limit "
                       "(decompression-bomb guard); resize it first") from None
    except PermissionError:
        raise ZooError(f"{label}: permission denied") from None
    except Image.UnidentifiedImageError:
        raise ZooError(f"{label}: not an image file PIL can read") from None
    except MemoryError:
        raise ZooError(f"{label}: too large to decode in the memory available") from None
    except (OSError, ValueError, SyntaxError, EOFError, struct.error, IndexError, KeyError, ZeroDivisionError) as e:
        # PIL's readers signal corrupt data with any of these (tests/fuzz_images.py exercises them)
        raise ZooError(f"{label}: unreadable or truncated image ({type(e).__name__}: {e})") from None


def array_to_rgb(arr: np.ndarray, color: str = "rgb") -> np.ndarray:
    if color not in ("rgb", "bgr"):
        raise ZooError(f"color must be 'rgb' or 'bgr', not {color!r}")
    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim == 2:
        a = np.stack([a] * 3, axis=-1)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise ZooError(f"image array of shape {a.shape}: expected (H, W), (H, W, 3) or (H, W, 4)")
    if a.shape[0] * a.shape[1] > MAX_PIXELS:
        raise ZooError(f"image array of {a.shape[1]}x{a.shape[0]} pixels is over the {MAX_PIXELS:,} pixel limit")
    if a.shape[0] < 8 or a.shape[1] < 8:
        raise ZooError(f"image array of shape {a.shape} is too small for a face")
    a = a[..., :3]
    if color == "bgr":
        a = a[..., ::-1]
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    if a.dtype == np.uint16:
        return np.ascontiguousarray((a / 257.0).round().astype(np.uint8))
    if np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise ZooError("image array holds NaN or infinite values")
        scale = 255.0 if a.max() <= 1.0 else 1.0
        return np.ascontiguousarray(np.clip(a * scale, 0, 255).round().astype(np.uint8))
    if a.dtype == bool or np.issubdtype(a.dtype, np.integer):
        return np.ascontiguousarray(np.clip(a.astype(np.int64) * (255 if a.dtype == bool else 1), 0, 255).astype(np.uint8))
    raise ZooError(f"image array of dtype {a.dtype} is not supported")
