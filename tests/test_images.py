"""Bad and unusual image input: a clear error naming the input, or a correct RGB array. Never a crash."""
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from zoo import ZooError, load_image


def save(img: Image.Image, path, **kw):
    img.save(path, **kw)
    return path


@pytest.fixture
def rgb():
    a = np.zeros((40, 60, 3), np.uint8)
    a[:20, :30] = (255, 0, 0)          # a red top-left corner shows orientation
    return Image.fromarray(a)


def test_missing_file(tmp_path):
    with pytest.raises(ZooError, match=r"nope\.jpg: no such file"):
        load_image(tmp_path / "nope.jpg")


def test_zero_byte_file(tmp_path):
    p = tmp_path / "empty.jpg"
    p.write_bytes(b"")
    with pytest.raises(ZooError, match=r"empty\.jpg: file is empty"):
        load_image(p)


def test_not_an_image(tmp_path):
    p = tmp_path / "notes.png"
    p.write_text("hello, I am text")
    with pytest.raises(ZooError, match=r"notes\.png: not an image"):
        load_image(p)


def test_truncated_jpeg(tmp_path, rgb):
    buf = io.BytesIO()
    rgb.resize((600, 400)).save(buf, "JPEG")
    p = tmp_path / "cut.jpg"
    p.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ZooError, match=r"cut\.jpg: unreadable or truncated"):
        load_image(p)


def test_folder_is_not_an_image(tmp_path):
    with pytest.raises(ZooError, match="is a folder"):
        load_image(tmp_path)


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "CMYK", "I;16", "I"])
def test_modes_become_rgb(tmp_path, rgb, mode):
    img = rgb.convert(mode) if mode not in ("I;16", "I") else Image.fromarray(
        (np.asarray(rgb.convert("L"), np.uint16) * 257).astype(np.uint16 if mode == "I;16" else np.int32))
    fmt = {"CMYK": "JPEG", "I": "TIFF"}.get(mode, "PNG")
    p = save(img, tmp_path / f"x.{fmt.lower()}", format=fmt)
    out = load_image(p)
    assert out.shape == (40, 60, 3) and out.dtype == np.uint8
    assert out[5, 5].max() > out[30, 50].max() or mode in ("CMYK",)   # the bright corner survives


def test_rgba_transparency_is_white(tmp_path):
    a = np.zeros((20, 20, 4), np.uint8)
    p = save(Image.fromarray(a, "RGBA"), tmp_path / "t.png")
    assert (load_image(p) == 255).all()


def test_exif_rotation_is_applied(tmp_path, rgb):
    exif = Image.Exif()
    exif[0x0112] = 6                                  # "rotate 90 CW to display"
    p = save(rgb, tmp_path / "rot.jpg", exif=exif.tobytes(), quality=95)
    out = load_image(p)
    assert out.shape == (60, 40, 3)                   # width and height swapped
    assert out[5, -5, 0] > 200 and out[-5, 5, 0] < 60  # red corner moved to the top right


def _png_header_only(w: int, h: int) -> bytes:
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + \
        chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_fast(tmp_path):
    p = tmp_path / "bomb.png"
    p.write_bytes(_png_header_only(30000, 30000))
    with pytest.raises(ZooError, match=r"bomb\.png: .*decompression-bomb guard"):
        load_image(p)


@pytest.mark.parametrize("arr, shape", [
    (np.zeros((32, 32), np.uint8), (32, 32, 3)),
    (np.zeros((32, 32, 1), np.uint8), (32, 32, 3)),
    (np.zeros((32, 32, 4), np.uint8), (32, 32, 3)),
    (np.full((32, 32, 3), 65535, np.uint16), (32, 32, 3)),
    (np.ones((32, 32, 3), np.float32), (32, 32, 3)),
])
def test_arrays(arr, shape):
    out = load_image(arr)
    assert out.shape == shape and out.dtype == np.uint8
    if arr.dtype != np.uint8 and arr.max() > 0:
        assert out.max() == 255


@pytest.mark.parametrize("arr, msg", [(np.zeros((4, 4, 3), np.uint8), "too small"),
                                      (np.zeros((32, 32, 5), np.uint8), "expected"),
                                      (np.full((32, 32, 3), np.nan, np.float32), "NaN")])
def test_bad_arrays(arr, msg):
    with pytest.raises(ZooError, match=msg):
        load_image(arr)


def test_unsupported_type():
    with pytest.raises(ZooError, match="unsupported image input"):
        load_image(42)
