#!/usr/bin/env bash
# Pose-balanced sampling (README, "Pose-balanced epochs"): pipnet_mbv2_300w, 6 more epochs from the weights
# published before the peers taught it (runs/abl68/before, as in scripts/teachers68_ablation.sh), on 300-W fit +
# the two-teacher 68-point pool, each face seen 1/1/2/4 times an epoch by its |yaw| bin (0-15/15-30/30-45/>=45
# degrees). Its twin without --pose-repeat is that script's runs/abl68/both. Resumes like it.
set -euxo pipefail
cd "$(dirname "$0")/.."
U=../shared/data/wflw/WFLW_annotations/unlabeled_images.txt
[ -f runs/teachers/wflw68/pool.npz ] || python -m train.teachers 68 --data ../shared/data \
    --teachers pfld_ghostone mediapipe --unlabeled $U --out runs/teachers/wflw68 --quiet
if [ ! -f runs/abl68/before/model.safetensors ]; then
  mkdir -p runs/abl68/before
  for f in model.safetensors config.json; do git show 887a47e:zoo/weights/pipnet_mbv2_300w/$f > runs/abl68/before/$f; done
fi
EPOCHS=${EPOCHS:-6}
out=runs/abl68/both_pose_e$EPOCHS
[ -f "$out/final/model.safetensors" ] || python -m train pipnet_mbv2_300w --data ../shared/data/300w --train-split fit \
    --val-split val --init runs/abl68/before --epochs "$EPOCHS" --lr 5e-4 --quiet --no-eval \
    --pseudo runs/teachers/wflw68/pool.npz --pose-repeat 1 1 2 4 --threads "${THREADS:-2}" --out "$out" --resume
echo POSE ABLATION DONE
