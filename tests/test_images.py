"""Bad and unusual image input: a clear error naming the input, or a correct RGB array. Never a crash."""
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fuzz_images import huge_png
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


def test_decompression_bomb_is_refused_fast(tmp_path):
    p = tmp_path / "bomb.png"
    p.write_bytes(huge_png(30000, 30000))
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


# A child process reads every case, so that a crash (a signal) or a hang fails this test instead of killing
# the test session; it reports one JSON line per case: outcome and seconds.
_FUZZ_CHILD = r"""
import json, sys, tempfile, time
from pathlib import Path
from fuzz_images import fuzz_cases, write_cases
from zoo import ZooError, load_image
n, seed = int(sys.argv[1]), int(sys.argv[2])
folder = Path(tempfile.mkdtemp(prefix="zoo-fuzz-"))
for case in fuzz_cases(n, seed):
    path = write_cases(folder, [case])[0]
    print(json.dumps({"case": case.name, "start": True}), flush=True)
    t0 = time.perf_counter()
    try:
        img = load_image(path)
        ok = img.dtype.name == "uint8" and img.ndim == 3 and img.shape[2] == 3 and min(img.shape[:2]) >= 8
        out = "image" if ok else f"bad array {img.dtype} {img.shape}"
    except ZooError as e:
        out = "zooerror" if path.name in str(e) else f"zooerror without the file name: {e}"
    except BaseException as e:
        out = f"{type(e).__name__}: {e}"
    print(json.dumps({"case": case.name, "out": out, "s": time.perf_counter() - t0}), flush=True)
    path.unlink()
"""


def test_fuzzed_files_give_a_zooerror_or_an_image_never_a_crash_or_hang():
    """Seeded random bytes, truncated / bit-flipped / spliced JPEG, PNG, WebP, GIF, BMP, TIFF, and huge
    declared sizes (tests/fuzz_images.py): each case a ZooError naming the file or a valid RGB image, in
    under 5 s; the whole run (about 4 s on an idle machine) under 120 s, bounds loose enough for a loaded one."""
    tests = Path(__file__).parent
    env = {**os.environ, "PYTHONPATH": f"{tests}:{tests.parent}"}
    try:
        proc = subprocess.run([sys.executable, "-X", "faulthandler", "-c", _FUZZ_CHILD, "400", "12"],
                              capture_output=True, text=True, timeout=120, env=env, cwd=tests.parent)
    except subprocess.TimeoutExpired as e:
        last = [json.loads(x) for x in (e.stdout or b"").decode().splitlines() if x.strip()][-1:]
        pytest.fail(f"fuzz run hung; last case started: {last}")
    lines = [json.loads(x) for x in proc.stdout.splitlines() if x.strip()]
    started = [r["case"] for r in lines if r.get("start")]
    done = [r for r in lines if "out" in r]
    assert proc.returncode == 0, f"child died (rc {proc.returncode}) on case {started[-1:]}: {proc.stderr[-2000:]}"
    assert len(done) == len(started) >= 430
    bugs = [(r["case"], r["out"]) for r in done if r["out"] not in ("image", "zooerror")]
    assert bugs == []
    slow = [(r["case"], round(r["s"], 2)) for r in done if r["s"] > 5.0]
    assert slow == []
    outcomes = {r["out"] for r in done}
    assert outcomes == {"image", "zooerror"}       # the generator makes both kinds: the test can tell them apart
