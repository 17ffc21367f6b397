#!/usr/bin/env bash
# Pose-balanced sampling (README, "Pose-balanced epochs"): pipnet_mbv2_300w, 6 more epochs from the weights
# published before the peers taught it (runs/abl68/before, as in scripts/teachers68_ablation.sh), on 300-W fit +
# the two-teacher 68-point pool, each face seen 1/1/2/4 times an epoch by its |yaw| bin (0-15/15-30/30-45/>=45
# degrees). Its twin without --pose-repeat is that script's runs/abl68/both; EPOCHS=12 gives the twin of the
# published runs/mbv2_300w_t12. THREADS=N sets torch's threads (default 2). Resumes like it.
set -euxo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh
pool runs/teachers/wflw68 pfld_ghostone mediapipe
weights_at pipnet_mbv2_300w 887a47e runs/abl68/before
EPOCHS=${EPOCHS:-6}
out=runs/abl68/both_pose_e$EPOCHS
[ -f "$out/final/model.safetensors" ] || python -m train pipnet_mbv2_300w --data ../shared/data/300w --train-split fit \
    --val-split val --init runs/abl68/before --epochs "$EPOCHS" --lr 5e-4 --quiet --no-eval \
    --pseudo $POOL68 --pose-repeat 1 1 2 4 --threads "${THREADS:-2}" --out "$out" --resume
echo POSE ABLATION DONE
