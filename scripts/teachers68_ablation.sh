#!/usr/bin/env bash
# The 68-point teachers ablation (README, "Peers as teachers, 68 points"): pipnet_mbv2_300w, 6 more epochs from
# the weights published before (copied to runs/abl68/before), with no pool, each teacher alone and both.
# Resumes: a finished arm is skipped, an unfinished one continues from its checkpoint.
set -euxo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh
pool runs/teachers/wflw68 pfld_ghostone mediapipe
pool runs/teachers/wflw68_pfld_ghostone pfld_ghostone
pool runs/teachers/wflw68_mediapipe mediapipe
weights_at pipnet_mbv2_300w 887a47e runs/abl68/before      # the weights published before the peer-taught ones
C="python -m train pipnet_mbv2_300w --data ../shared/data/300w --train-split fit --val-split val --init runs/abl68/before --epochs 6 --lr 5e-4 --quiet --no-eval"
run() { out=$1; shift; [ -f "$out/final/model.safetensors" ] || $C --out "$out" --resume "$@"; }
run runs/abl68/both --pseudo $POOL68
run runs/abl68/none
run runs/abl68/pfld --pseudo runs/teachers/wflw68_pfld_ghostone/pool.npz
run runs/abl68/mediapipe --pseudo runs/teachers/wflw68_mediapipe/pool.npz
echo ABLATION DONE
