#!/usr/bin/env bash
# MobileFAN's distillation ablation (README, "MobileFAN distilled from the strongest teacher"): four arms (none,
# feature-aligned only, feature-similarity only, both) x two seeds, each from the ImageNet MobileNetV2 in
# ../shared, on 300-W fit + the 68-point peer pool, distilled from the best published 300-W PIPNet. Two runs at a
# time, one thread each (on 2 cores that trains ~18% more images a second than one run on two threads).
# TEACHER=name overrides the teacher (default: the recipe's, the published 300-W PIPNet best on held-out val).
# Resumes: a finished run is skipped, an unfinished one continues from its checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
EPOCHS=${EPOCHS:-3}
. scripts/common.sh
pool runs/teachers/wflw68 pfld_ghostone mediapipe
weights_at mobilefan_300w 84d871c runs/mfan_before      # the table's first row: the model published before
C="python -m train mobilefan_300w --data ../shared/data/300w --pretrained ../shared/weights/imagenet_mbv2/mobilenet_v2_imagenet_zoo_norm.pth --pseudo $POOL68 --epochs $EPOCHS ${TEACHER:+--teacher $TEACHER} --threads 1 --quiet --no-eval"
mkdir -p runs/logs
run() { arm=$1 seed=$2; shift 2; out=runs/mfan/${arm}_s$seed
        [ -f "$out/final/model.safetensors" ] || $C --seed "$seed" --out "$out" --resume "$@" > runs/logs/mfan_${arm}_s$seed.log 2>&1; }
for seed in 0 1; do
  run both $seed & run none $seed --no-distill & wait
  run fa $seed --fs-weight 0 & run fs $seed --fa-weight 0 & wait
done
echo MOBILEFAN ABLATION DONE
