"""FaceBoxesV2 face detector (the detector bundled with PIPNet's demo, MIT licence), in pure torch.

The module layout mirrors the released checkpoint so its state_dict loads strictly once the
``module.`` (DataParallel) prefix is removed. Post-processing (prior boxes, SSD-style decoding, NMS)
is plain torch, with no compiled extension or extra vision library.

Preprocessing of the original demo: the image is read with ``cv2.imread`` (BGR, uint8), the per-channel
mean (104, 117, 123) in BGR order is subtracted, and nothing is divided (values stay in 0..255 range).
The demo runs at the image's own size (im_scale=1) with score threshold 0.6 and NMS threshold 0.3.
"""
from __future__ import annotations

import functools
import logging
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

logger = logging.getLogger(__name__)

# BGR channel means the checkpoint was trained with (Caffe/SSD convention).
MEAN_BGR: tuple[float, float, float] = (104.0, 117.0, 123.0)
# Box-regression variances of the SSD encoding used in training.
VARIANCE: tuple[float, float] = (0.1, 0.2)
# Anchor sizes (pixels) per detection level, and each level's stride.
MIN_SIZES: tuple[tuple[int, ...], ...] = ((32, 64, 128), (256,), (512,))
STEPS: tuple[int, ...] = (32, 64, 128)
# Candidates kept before / after NMS, as in the original detector.
PRE_NMS_TOP_K = 5000
POST_NMS_TOP_K = 750


class ConvBNReLU(nn.Module):
    """Bias-free conv + BatchNorm + ReLU; attribute names match the checkpoint (``conv``, ``bn``)."""

    def __init__(self, cin: int, cout: int, kernel_size: int, stride: int = 1, padding: int = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=1e-5)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
    """Four-branch 128 -> 128 block: 1x1 | avgpool+1x1 | 1x1+3x3 | 1x1+3x3+3x3, each 32 channels."""

    def __init__(self) -> None:
        super().__init__()
        self.branch1x1 = ConvBNReLU(128, 32, 1)
        self.branch1x1_2 = ConvBNReLU(128, 32, 1)
        self.branch3x3_reduce = ConvBNReLU(128, 24, 1)
        self.branch3x3 = ConvBNReLU(24, 32, 3, padding=1)
        self.branch3x3_reduce_2 = ConvBNReLU(128, 24, 1)
        self.branch3x3_2 = ConvBNReLU(24, 32, 3, padding=1)
        self.branch3x3_3 = ConvBNReLU(32, 32, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        a = self.branch1x1(x)
        # count_include_pad=True (the torch default) is what the weights were trained with.
        b = self.branch1x1_2(F.avg_pool2d(x, kernel_size=3, stride=1, padding=1))
        c = self.branch3x3(self.branch3x3_reduce(x))
        d = self.branch3x3_3(self.branch3x3_2(self.branch3x3_reduce_2(x)))
        return torch.cat([a, b, c, d], dim=1)


def _anchors_per_cell(min_sizes: tuple[int, ...]) -> int:
    # Anchor densification: size-32 anchors are tiled 4x4 per cell, size-64 2x2, larger ones once.
    return sum({32: 16, 64: 4}.get(s, 1) for s in min_sizes)


class FaceBoxesV2(nn.Module):
    """FaceBoxesV2 backbone + multibox heads (about 1.03 M parameters, 2 classes: background, face).

    forward(x) takes a (B, 3, H, W) float tensor of mean-subtracted BGR pixels and returns raw
    ``loc`` (B, N, 4) box offsets and ``conf`` (B, N, 2) class logits, N = number of prior boxes for HxW.
    """

    def __init__(self, num_classes: int = 2) -> None:
        super().__init__()
        self.num_classes = num_classes
        # Five stride-2 convs: a cheap 32x reduction before the multi-scale part.
        self.conv1 = ConvBNReLU(3, 8, 3, stride=2, padding=1)
        self.conv2 = ConvBNReLU(8, 16, 3, stride=2, padding=1)
        self.conv3 = ConvBNReLU(16, 32, 3, stride=2, padding=1)
        self.conv4 = ConvBNReLU(32, 64, 3, stride=2, padding=1)
        self.conv5 = ConvBNReLU(64, 128, 3, stride=2, padding=1)
        self.inception1 = Inception()
        self.inception2 = Inception()
        self.inception3 = Inception()
        self.conv6_1 = ConvBNReLU(128, 128, 1)
        self.conv6_2 = ConvBNReLU(128, 256, 3, stride=2, padding=1)
        self.conv7_1 = ConvBNReLU(256, 128, 1)
        self.conv7_2 = ConvBNReLU(128, 256, 3, stride=2, padding=1)
        in_channels = (128, 256, 256)
        anchors = [_anchors_per_cell(s) for s in MIN_SIZES]  # 21, 1, 1
        self.loc = nn.ModuleList(nn.Conv2d(c, a * 4, 3, padding=1) for c, a in zip(in_channels, anchors))
        self.conf = nn.ModuleList(
            nn.Conv2d(c, a * num_classes, 3, padding=1) for c, a in zip(in_channels, anchors)
        )

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = self.conv5(self.conv4(self.conv3(self.conv2(self.conv1(x)))))
        s1 = self.inception3(self.inception2(self.inception1(x)))
        s2 = self.conv6_2(self.conv6_1(s1))
        s3 = self.conv7_2(self.conv7_1(s2))
        b = x.shape[0]
        locs, confs = [], []
        for src, loc_head, conf_head in zip((s1, s2, s3), self.loc, self.conf):
            # NHWC flattening gives the (row, col, anchor) order that prior_boxes() produces.
            locs.append(loc_head(src).permute(0, 2, 3, 1).reshape(b, -1, 4))
            confs.append(conf_head(src).permute(0, 2, 3, 1).reshape(b, -1, self.num_classes))
        return torch.cat(locs, dim=1), torch.cat(confs, dim=1)


@functools.lru_cache(maxsize=32)
def prior_boxes(height: int, width: int) -> Tensor:
    """Prior boxes (N, 4) as normalised (cx, cy, w, h) for an HxW input; cached per size, do not mutate.

    Order: level, then feature-map row, column, then anchor (sizes in MIN_SIZES order, dense offsets
    row-major), matching the heads' output. Offsets 0, .25, .5, .75 (and 0, .5) are the original
    densification, not cell-centred; the weights were trained with them. No clipping (clip=False).
    """
    levels = []
    for step, sizes in zip(STEPS, MIN_SIZES):
        fh, fw = -(-height // step), -(-width // step)  # ceil, like the stride-2 convs with padding 1
        # Per-cell anchor table: (offset_x, offset_y, size) in cell units / pixels.
        cell: list[tuple[float, float, float]] = []
        for size in sizes:
            n = {32: 4, 64: 2}.get(size, 1)
            offsets = [k / n for k in range(n)] if n > 1 else [0.5]
            cell += [(ox, oy, float(size)) for oy in offsets for ox in offsets]
        table = torch.tensor(cell, dtype=torch.float64)  # (A, 3)
        ys, xs = torch.meshgrid(
            torch.arange(fh, dtype=torch.float64), torch.arange(fw, dtype=torch.float64), indexing="ij"
        )
        cx = (xs[..., None] + table[:, 0]) * step / width  # (fh, fw, A)
        cy = (ys[..., None] + table[:, 1]) * step / height
        w = (table[:, 2] / width).expand_as(cx)
        h = (table[:, 2] / height).expand_as(cy)
        levels.append(torch.stack([cx, cy, w, h], dim=-1).reshape(-1, 4))
    return torch.cat(levels).to(torch.float32)


def decode(loc: Tensor, priors: Tensor, variance: tuple[float, float] = VARIANCE) -> Tensor:
    """SSD decoding of offsets (N, 4) against priors (N, 4 cx cy w h) into normalised x0, y0, x1, y1."""
    centre = priors[:, :2] + loc[:, :2] * variance[0] * priors[:, 2:]
    size = priors[:, 2:] * torch.exp(loc[:, 2:] * variance[1])
    return torch.cat([centre - size / 2, centre + size / 2], dim=1)


def box_iou_one(box: Tensor, boxes: Tensor) -> Tensor:
    """IoU of one box (4,) against boxes (M, 4), continuous x0 y0 x1 y1 (no legacy +1 pixel)."""
    lt = torch.maximum(box[:2], boxes[:, :2])
    rb = torch.minimum(box[2:], boxes[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=1)
    area = (box[2:] - box[:2]).clamp(min=0).prod()
    areas = (boxes[:, 2:] - boxes[:, :2]).clamp(min=0).prod(dim=1)
    return inter / (area + areas - inter).clamp(min=1e-12)


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Greedy NMS; returns indices of kept boxes, highest score first.

    One vectorised IoU row per kept box, so memory stays O(N) even with thousands of candidates.
    """
    order = torch.argsort(scores, descending=True)
    keep: list[int] = []
    while order.numel() > 0:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        if rest.numel() == 0:
            break
        order = rest[box_iou_one(boxes[i], boxes[rest]) <= iou_threshold]
    return torch.tensor(keep, dtype=torch.long, device=boxes.device)


def postprocess(
    loc: Tensor,
    conf: Tensor,
    height: int,
    width: int,
    score_threshold: float = 0.6,
    nms_threshold: float = 0.3,
    pre_nms_top_k: int = PRE_NMS_TOP_K,
    keep_top_k: int = POST_NMS_TOP_K,
) -> tuple[Tensor, Tensor]:
    """Turn one image's raw outputs (N, 4) / (N, 2) into boxes (K, 4) in input pixels and scores (K,)."""
    scores = torch.softmax(conf.float(), dim=-1)[:, 1]
    priors = prior_boxes(height, width).to(loc.device)
    if priors.shape[0] != loc.shape[0]:
        raise ValueError(f"{loc.shape[0]} predictions but {priors.shape[0]} priors for {height}x{width}")
    mask = scores > score_threshold
    if not bool(mask.any()):
        return loc.new_zeros((0, 4), dtype=torch.float32), scores.new_zeros((0,))
    scores = scores[mask]
    boxes = decode(loc[mask].float(), priors[mask])
    boxes = boxes * torch.tensor([width, height, width, height], dtype=boxes.dtype, device=boxes.device)
    top = torch.argsort(scores, descending=True)[:pre_nms_top_k]
    boxes, scores = boxes[top], scores[top]
    keep = nms(boxes, scores, nms_threshold)[:keep_top_k]
    return boxes[keep], scores[keep]


def detect(
    model: FaceBoxesV2,
    image_rgb: np.ndarray,
    score_threshold: float = 0.6,
    nms_threshold: float = 0.3,
    max_side: int = 1024,
) -> tuple[np.ndarray, np.ndarray]:
    """Detect faces in an RGB uint8 HxWx3 image.

    Returns boxes (K, 4) float32 x0, y0, x1, y1 in original image pixels (not clipped to the image,
    like the original) and scores (K,) float32, sorted by score descending.
    """
    if not isinstance(image_rgb, np.ndarray) or image_rgb.ndim != 3 or image_rgb.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 RGB array, got {getattr(image_rgb, 'shape', type(image_rgb))}")
    if image_rgb.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {image_rgb.dtype}")
    h0, w0 = image_rgb.shape[:2]
    scale = min(1.0, max_side / max(h0, w0))
    image = image_rgb
    if scale < 1.0:
        # Large inputs cost time and the smallest anchor (32 px) is already small; INTER_AREA avoids aliasing.
        size = (max(1, round(w0 * scale)), max(1, round(h0 * scale)))
        image = cv2.resize(image_rgb, size, interpolation=cv2.INTER_AREA)
    h, w = image.shape[:2]
    # The checkpoint expects BGR minus the BGR means, unscaled.
    bgr = image[:, :, ::-1].astype(np.float32) - np.asarray(MEAN_BGR, dtype=np.float32)
    param = next(model.parameters())
    x = torch.from_numpy(np.ascontiguousarray(bgr.transpose(2, 0, 1)))[None].to(param.device, param.dtype)

    was_training = model.training
    model.eval()  # BatchNorm must use running statistics
    try:
        with torch.inference_mode():
            loc, conf = model(x)
            boxes, scores = postprocess(loc[0], conf[0], h, w, score_threshold, nms_threshold)
    finally:
        model.train(was_training)

    boxes_np = boxes.cpu().numpy().astype(np.float32)
    if scale < 1.0:
        # Map back with the exact per-axis ratios actually used by the resize.
        boxes_np *= np.asarray([w0 / w, h0 / h, w0 / w, h0 / h], dtype=np.float32)
    return boxes_np, scores.cpu().numpy().astype(np.float32)


def load_faceboxes(path: str | Path, device: str | torch.device = "cpu") -> FaceBoxesV2:
    """Build FaceBoxesV2 from a .safetensors file (see zoo.convert) or the original .pth, strictly."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path), device="cpu")
    else:
        state = torch.load(path, weights_only=True, map_location="cpu")
        state = {k.removeprefix("module."): v for k, v in state.items()}
    model = FaceBoxesV2()
    model.load_state_dict(state, strict=True)
    logger.debug("loaded FaceBoxesV2 from %s", path)
    return model.to(device).eval()
