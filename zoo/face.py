"""What every landmarker returns for one face (the zoo's, the peers', the tracker's)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class Face:
    box: np.ndarray          # (4,) x0 y0 x1 y1, image pixels: the detector's (or given) face box
    landmarks: np.ndarray    # (N, 2) float32, image pixels
    score: float             # detector confidence (1.0 for given boxes)
    detector: str | None = None   # the detector whose box this is (its crop rule goes with it); None: caller's
    # (N,) in [0, 1]: the chance each point lies within the weight's calibrated tolerance (e.g. 10% of the
    # inter-ocular distance) of the truth; None where the weight has no calibration (peers, uncalibrated)
    scores: np.ndarray | None = None
    # radians: the roll (eye-line slope) of the detector's eye keypoints that the first crop was levelled by
    # (0: an axis-aligned first crop); passed back as a box, the Face is cropped the same way again
    roll: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"box": [round(float(v), 2) for v in self.box], "score": round(float(self.score), 4),
                "detector": self.detector,
                "landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in self.landmarks],
                **({"scores": [round(float(v), 3) for v in self.scores]} if self.scores is not None else {}),
                **({"roll_deg": round(float(np.degrees(self.roll)), 1)} if self.roll else {})}
