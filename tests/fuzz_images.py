"""Seeded fuzz cases for anything that reads image files (zoo.load_image, the Space's API).

    from fuzz_images import fuzz_cases, write_cases
    for case in fuzz_cases(n=300, seed=0):      # FuzzCase(name, suffix, data): the same bytes on every run
        ...
    paths = write_cases(tmp_path, fuzz_cases(50))   # files named <name><suffix>, e.g. flip_017.png

Cases: small valid JPEG/PNG/WebP/GIF/BMP/TIFF files (the seeds), then the seeds truncated at random points,
with random bits flipped, with random spans overwritten, as bare headers, as random bytes (with and without
a format's magic number), and with huge declared dimensions (PNG IHDR, JPEG SOF, WebP VP8X, GIF, BMP) that
a reader must refuse before allocating the pixels. A correct reader gives a clear error or a valid image
for every case, quickly, and never crashes or hangs.
"""
from __future__ import annotations

import io
import random
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
from PIL import Image

FORMATS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp", "TIFF": ".tif"}
MAGIC = {".jpg": b"\xff\xd8\xff\xe0", ".png": b"\x89PNG\r\n\x1a\n", ".webp": b"RIFF\x00\x00\x00\x00WEBPVP8 ",
         ".gif": b"GIF89a", ".bmp": b"BM", ".tif": b"II*\x00"}


@dataclass(frozen=True)
class FuzzCase:
    name: str       # unique, filename-safe: "<kind>_<index>" or a fixed case's name
    suffix: str     # the extension the bytes claim to be (".jpg", ".png", ...)
    data: bytes

    @property
    def filename(self) -> str:
        return self.name + self.suffix


def seed_images(seed: int = 0, size: tuple[int, int] = (64, 48)) -> dict[str, bytes]:
    """Small valid files, one per format (JPEG also with an EXIF orientation), from a seeded picture."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    arr = np.stack([xx * 255 // w, yy * 255 // h, rng.integers(0, 255, (h, w))], -1).astype(np.uint8)
    img = Image.fromarray(arr)
    out = {}
    for fmt, suffix in FORMATS.items():
        buf = io.BytesIO()
        (img.convert("P") if fmt == "GIF" else img).save(buf, fmt)
        out[suffix] = buf.getvalue()
    exif = Image.Exif()
    exif[0x0112] = 6                                    # rotate 90 degrees on display
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif.tobytes())
    out["_exif.jpg"] = buf.getvalue()
    return out


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def huge_png(width: int, height: int) -> bytes:
    """A well-formed PNG header (valid CRCs) declaring width x height, with almost no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (MAGIC[".png"] + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + _png_chunk(b"IEND", b""))


def huge_jpeg(width: int, height: int, seed_jpeg: bytes) -> bytes:
    """A real JPEG whose frame header (SOF0/SOF2) claims width x height."""
    data = bytearray(seed_jpeg)
    for marker in (b"\xff\xc0", b"\xff\xc2"):
        i = data.find(marker)
        if i >= 0:
            data[i + 5:i + 9] = struct.pack(">HH", height, width)
            break
    return bytes(data)


def huge_webp(width: int, height: int) -> bytes:
    """An extended WebP (VP8X) declaring a width x height canvas (24-bit fields, up to 16777216)."""
    vp8x = b"\x00\x00\x00\x00" + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    body = b"WEBP" + b"VP8X" + struct.pack("<I", len(vp8x)) + vp8x
    return b"RIFF" + struct.pack("<I", len(body)) + body


def huge_gif(width: int, height: int, seed_gif: bytes) -> bytes:
    data = bytearray(seed_gif)
    data[6:10] = struct.pack("<HH", width, height)        # logical screen
    i = data.find(b"\x2c")                               # first image descriptor
    if i >= 0:
        data[i + 5:i + 9] = struct.pack("<HH", width, height)
    return bytes(data)


def huge_bmp(width: int, height: int, seed_bmp: bytes) -> bytes:
    data = bytearray(seed_bmp)
    data[18:26] = struct.pack("<ii", width, height)
    return bytes(data)


def _fixed_cases(seeds: dict[str, bytes]) -> list[FuzzCase]:
    jpg, gif, bmp = seeds[".jpg"], seeds[".gif"], seeds[".bmp"]
    cases = [FuzzCase(f"valid{s.replace('.', '_')}", s if s.startswith(".") else ".jpg", d) for s, d in seeds.items()]
    cases += [FuzzCase("empty", ".jpg", b""), FuzzCase("one_byte", ".png", b"\x89"),
              FuzzCase("text", ".png", b"hello, I am text\n"), FuzzCase("nul", ".webp", b"\x00" * 1024)]
    cases += [FuzzCase(f"magic_only{s.replace('.', '_')}", s, m) for s, m in MAGIC.items()]
    for w, h in ((100_000, 100_000), (65_535, 65_535), (1, 2**31 - 1), (2**31 - 1, 1), (9000, 9000), (7000, 7000)):
        cases.append(FuzzCase(f"huge_png_{w}x{h}", ".png", huge_png(w, h)))
    for w, h in ((65_500, 65_500), (65_535, 1), (9000, 9000), (4000, 4000)):   # 4000x4000 still decodes (gray)
        cases.append(FuzzCase(f"huge_jpeg_{w}x{h}", ".jpg", huge_jpeg(w, h, jpg)))
    for w, h in ((16_383, 16_383), (2**24, 2**24), (9000, 9000)):
        cases.append(FuzzCase(f"huge_webp_{w}x{h}", ".webp", huge_webp(w, h)))
    cases.append(FuzzCase("huge_gif_65535x65535", ".gif", huge_gif(65_535, 65_535, gif)))
    for w, h in ((100_000, 100_000), (1, -(2**31 - 1)), (-5, 5)):
        cases.append(FuzzCase(f"huge_bmp_{w}x{h}".replace("-", "neg"), ".bmp", huge_bmp(w, h, bmp)))
    return cases


def _mutate(rng: random.Random, kind: str, data: bytes) -> bytes:
    if kind == "truncate":
        return data[:rng.randrange(1, max(len(data), 2))]
    if kind == "flip":
        out = bytearray(data)
        for _ in range(rng.randint(1, 16)):
            i = rng.randrange(len(out))
            out[i] ^= 1 << rng.randrange(8)
        return bytes(out)
    if kind == "splice":                                  # overwrite a span (often a header field) with noise
        out = bytearray(data)
        i = rng.randrange(min(len(out), 64) if rng.random() < 0.5 else len(out))
        n = rng.randint(1, 32)
        out[i:i + n] = rng.randbytes(n)
        return bytes(out)
    if kind == "repeat":                                  # a chunk duplicated: lengths and offsets disagree
        i, j = sorted(rng.randrange(len(data)) for _ in range(2))
        return data[:j] + data[i:j] + data[j:]
    raise ValueError(kind)


def fuzz_cases(n: int = 300, seed: int = 0) -> Iterator[FuzzCase]:
    """The fixed cases, then `n` seeded random ones; the same bytes for the same (n, seed) on every run."""
    seeds = seed_images(seed)
    yield from _fixed_cases(seeds)
    rng = random.Random(seed)
    kinds = ("truncate", "flip", "splice", "repeat", "random", "magic_random")
    sources = sorted(seeds)
    for i in range(n):
        kind = kinds[i % len(kinds)]
        src = rng.choice(sources)
        suffix = src if src.startswith(".") else ".jpg"
        if kind == "random":
            data = rng.randbytes(rng.randint(1, 4096))
        elif kind == "magic_random":
            data = MAGIC[suffix] + rng.randbytes(rng.randint(1, 4096))
        else:
            data = _mutate(rng, kind, seeds[src])
        yield FuzzCase(f"{kind}_{i:03d}", suffix, data)


def write_cases(folder: str | Path, cases: Iterable[FuzzCase]) -> list[Path]:
    """Write each case to folder/<name><suffix>; return the paths in order."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for case in cases:
        path = folder / case.filename
        path.write_bytes(case.data)
        paths.append(path)
    return paths
