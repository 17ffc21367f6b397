"""Landmark schemes: point counts, flip permutations, NME normalisation and drawing contours.

The single source of truth for every per-dataset landmark convention; training (flip augmentation),
evaluation (NME) and drawing all read from here.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .registry import ZooError


@dataclass(frozen=True)
class Contour:
    indices: tuple[int, ...]
    closed: bool = False


@dataclass(frozen=True)
class Scheme:
    name: str
    num_points: int
    flip_pairs: tuple[tuple[int, int], ...]
    # Two indices whose distance normalises NME, or None for box normalisation (sqrt(w*h) of the face box).
    norm_points: tuple[int, int] | None
    norm_desc: str
    contours: tuple[Contour, ...] = field(default=())
    # Face regions for per-region NME: "jaw", "brows", "nose", "eyes", "mouth" -> 0-based point indices.
    regions: dict[str, tuple[int, ...]] = field(default_factory=dict, hash=False)

    @property
    def flip_perm(self) -> np.ndarray:
        """Permutation p such that, after a horizontal flip, new point i is old point p[i]."""
        perm = np.arange(self.num_points)
        for a, b in self.flip_pairs:
            perm[a], perm[b] = b, a
        return perm

    def norm_distance(self, landmarks: np.ndarray, box: np.ndarray | None = None) -> np.ndarray:
        """Per-face normaliser for NME. landmarks: (..., N, 2); box: (..., 4) x0 y0 x1 y1 (box schemes)."""
        landmarks = np.asarray(landmarks, dtype=np.float64)
        if self.norm_points is not None:
            a, b = self.norm_points
            return np.linalg.norm(landmarks[..., a, :] - landmarks[..., b, :], axis=-1)
        if box is None:
            lo, hi = landmarks.min(axis=-2), landmarks.max(axis=-2)
            box = np.concatenate([lo, hi], axis=-1)
        box = np.asarray(box, dtype=np.float64)
        return np.sqrt((box[..., 2] - box[..., 0]) * (box[..., 3] - box[..., 1]))


def _mirror(left: range | list[int], right: range | list[int]) -> list[tuple[int, int]]:
    return list(zip(left, right))


def _chain(a: int, b: int, closed: bool = False) -> Contour:
    return Contour(tuple(range(a, b + 1)), closed)


REGIONS = ("jaw", "brows", "nose", "eyes", "mouth")


def _regions(**parts: range | tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """Regions as index tuples, in REGIONS order whatever the keyword order."""
    assert set(parts) == set(REGIONS), sorted(parts)
    return {k: tuple(parts[k]) for k in REGIONS}


# 68 points (Multi-PIE / 300-W / iBUG), 0-based.
_68_pairs = (
    _mirror(range(0, 8), range(16, 8, -1))          # jaw
    + _mirror(range(17, 22), range(26, 21, -1))     # brows
    + _mirror([31, 32], [35, 34])                   # nostrils
    + _mirror([36, 37, 38, 39, 40, 41], [45, 44, 43, 42, 47, 46])  # eyes
    + _mirror([48, 49, 50, 55, 56, 60, 61, 65], [54, 53, 52, 59, 58, 64, 63, 67])  # mouth
)
W300 = Scheme(
    "68", 68, tuple(_68_pairs), (36, 45), "inter-ocular (outer eye corners 36, 45)",
    (_chain(0, 16), _chain(17, 21), _chain(22, 26), _chain(27, 30), _chain(31, 35),
     _chain(36, 41, True), _chain(42, 47, True), _chain(48, 59, True), _chain(60, 67, True)),
    _regions(jaw=range(0, 17), brows=range(17, 27), nose=range(27, 36), eyes=range(36, 48), mouth=range(48, 68)),
)

# 98 points (WFLW), 0-based.
_98_pairs = (
    _mirror(range(0, 16), range(32, 16, -1))
    + _mirror(range(33, 42), [46, 45, 44, 43, 42, 50, 49, 48, 47])
    + _mirror([55, 56], [59, 58])
    + _mirror(range(60, 68), [72, 71, 70, 69, 68, 75, 74, 73])
    + _mirror([76, 77, 78, 83, 84, 88, 89, 93, 96], [82, 81, 80, 87, 86, 92, 91, 95, 97])
)
WFLW = Scheme(
    "98", 98, tuple(_98_pairs), (60, 72), "inter-ocular (outer eye corners 60, 72)",
    (_chain(0, 32), _chain(33, 41, True), _chain(42, 50, True), _chain(51, 54), _chain(55, 59),
     _chain(60, 67, True), _chain(68, 75, True), _chain(76, 87, True), _chain(88, 95, True)),
    # The pupils (96, 97) count with the eyes.
    _regions(jaw=range(0, 33), brows=range(33, 51), nose=range(51, 60), eyes=(*range(60, 76), 96, 97),
             mouth=range(76, 96)),
)

# 29 points (COFW), 0-based; NME normaliser as in PIPNet's evaluation (points 8 and 9).
COFW = Scheme(
    "29", 29,
    ((0, 1), (4, 6), (2, 3), (5, 7), (8, 9), (10, 11), (12, 14), (16, 17), (13, 15), (18, 19), (22, 23)),
    (8, 9), "inter-ocular (points 8, 9, PIPNet's COFW convention)",
    (Contour((0, 4, 2, 5)), Contour((1, 6, 3, 7)), Contour((8, 12, 10, 13), True), Contour((9, 14, 11, 15), True),
     Contour((18, 20, 19)), Contour((22, 24, 23, 25, 27), True)),
    # 16, 17 are the pupils; 28 is the chin, COFW's only jaw point.
    _regions(jaw=(28,), brows=range(0, 8), nose=range(18, 22), eyes=range(8, 18), mouth=range(22, 28)),
)

# 19 points (AFLW), 0-based; NME normalised by the face box, sqrt(w * h).
AFLW = Scheme(
    "19", 19,
    ((0, 5), (1, 4), (2, 3), (6, 11), (7, 10), (8, 9), (12, 14), (15, 17)),
    None, "face box sqrt(w*h)",
    (_chain(0, 2), _chain(3, 5), _chain(6, 8), _chain(9, 11), _chain(12, 14), _chain(15, 17)),
    # 18 is the chin.
    _regions(jaw=(18,), brows=range(0, 6), nose=range(12, 15), eyes=range(6, 12), mouth=range(15, 18)),
)

SCHEMES: dict[str, Scheme] = {s.name: s for s in (W300, WFLW, COFW, AFLW)}
# Dataset name -> scheme name.
DATASET_SCHEMES = {"300w": "68", "wflw": "98", "cofw": "29", "aflw": "19"}


def get_scheme(name_or_points: str | int) -> Scheme:
    """A scheme by name ("68"), dataset ("wflw") or point count (98)."""
    key = str(name_or_points).lower()
    key = DATASET_SCHEMES.get(key, key)
    if key not in SCHEMES:
        raise KeyError(f"unknown landmark scheme {name_or_points!r}; known: {sorted(SCHEMES)} "
                       f"or datasets {sorted(DATASET_SCHEMES)}")
    return SCHEMES[key]


# WFLW-68: the 68 points of 300-W's order picked out of WFLW's 98 (the cross-dataset protocol's usual subset).
# WFLW draws the jaw with 33 points where 300-W has 17, so every other one; each brow with 9 (upper edge 5 from
# the outer end, lower edge 4 back) where 300-W has 5 along the upper edge; each eye with 8 (corner, 3 upper,
# corner, 3 lower) where 300-W has 6 (corner, 2, corner, 2), so the middle lid points drop; nose and mouth
# match point for point. Checked on the shared WFLW faces against a 300-W model (tests/test_schemes.py): on
# the 72 test faces (ground-truth crops), pipnet_r18_300w lands nearest the mapped point of the same index for
# every point but four mouth points that coincide on closed mouths, and its inter-ocular distance is 0.98x
# the mapped one (median). Per-region median NME of its brows is 6.3% on the upper edges vs 8.2% on the
# middle of the brow; its eye lids are 4.7% from the picked points 61 63 65 67 (69 71 73 75) vs 3.6% from
# the midpoints of neighbouring lid points (300-W's lid points sit at about 1/3 and 2/3 of the lid, WFLW's
# at 1/4, 1/2, 3/4). The map keeps the standard subset anyway, so WFLW-68 numbers compare with published ones.
WFLW98_TO_68: tuple[int, ...] = (
    tuple(range(0, 33, 2))                      # jaw 0-16
    + tuple(range(33, 38)) + tuple(range(42, 47))  # brows 17-26: upper edges
    + tuple(range(51, 60))                      # nose 27-35: bridge 51-54, lower nose 55-59
    + (60, 61, 63, 64, 65, 67)                  # eye 36-41: outer corner, upper lid, inner corner, lower lid
    + (68, 69, 71, 72, 73, 75)                  # eye 42-47: inner corner, upper lid, outer corner, lower lid
    + tuple(range(76, 96))                      # mouth 48-67: outer lip 76-87, inner lip 88-95
)
_POINT_MAPS: dict[tuple[str, str], tuple[int, ...]] = {("98", "68"): WFLW98_TO_68}


def embedding(src: str, dst: str) -> tuple[int, ...]:
    """Where each point of scheme `src` sits in the layout of the larger scheme `dst` ("68" -> "98": the
    98-point index of each of the 68 points); the identity for the same scheme."""
    a, b = get_scheme(src).name, get_scheme(dst).name
    if a == b:
        return tuple(range(SCHEMES[a].num_points))
    if (b, a) not in _POINT_MAPS:
        raise ZooError(f"no point map from scheme {b!r} to scheme {a!r}, so {a!r} labels cannot train a {b!r} model")
    return _POINT_MAPS[(b, a)]


def embed_points(points: np.ndarray, src: str, dst: str) -> np.ndarray:
    """The inverse of convert_points for training on partial labels: landmarks (..., N, 2) of scheme `src`
    placed in the layout of the larger scheme `dst`, NaN where `src` has no point ("68" -> "98")."""
    pts = np.asarray(points, dtype=np.float32)
    if get_scheme(src).name == get_scheme(dst).name:
        return pts
    where = embedding(src, dst)
    out = np.full(pts.shape[:-2] + (get_scheme(dst).num_points, 2), np.nan, np.float32)
    out[..., list(where), :] = pts
    return out


def to_scheme(points: np.ndarray, src: str, dst: str) -> np.ndarray:
    """Landmarks (..., N, 2) of `src` in `dst`'s layout either way: the subset when `dst` is the smaller scheme
    ("98" -> "68"), else embedded with NaN where `src` has no point ("68" -> "98")."""
    a, b = get_scheme(src).name, get_scheme(dst).name
    return convert_points(points, a, b) if (a, b) in _POINT_MAPS else embed_points(points, a, b)


def convert_points(points: np.ndarray, src: str, dst: str) -> np.ndarray:
    """Landmarks (..., N, 2) of scheme `src` as scheme `dst` (names, datasets or point counts: "98", "wflw",
    68). Only subsets are supported ("98" -> "68"); the same scheme gives the points back unchanged."""
    try:
        a, b = get_scheme(src).name, get_scheme(dst).name
    except KeyError as e:
        raise ZooError(f"cannot convert points from scheme {src!r} to {dst!r}: {e.args[0]}") from None
    pts = np.asarray(points)
    if pts.ndim < 2 or pts.shape[-2:] != (SCHEMES[a].num_points, 2):
        raise ZooError(f"points of scheme {a!r} must have shape (..., {SCHEMES[a].num_points}, 2), got {pts.shape}")
    if a == b:
        return pts
    if (a, b) not in _POINT_MAPS:
        known = ", ".join(f"{x}->{y}" for x, y in _POINT_MAPS)
        raise ZooError(f"no point map from scheme {a!r} to scheme {b!r} (known: {known})")
    return pts[..., list(_POINT_MAPS[(a, b)]), :]
