#!/usr/bin/env bash
# Two training runs of the shipped network in ONE lent-GPU call (model card: stage 10).
#
#   bash models/gpu_continue.sh TRAIN_DIR VAL_DIR OUT_DIR [SECONDS_A] [SECONDS_B]
#
# Run A restarts the shipped model at LR_A (8e-5) with a full cosine decay over SECONDS_A (370); run B
# continues A's EMA weights at LR_B (5e-5) over SECONDS_B (140; 0 = no run B). One call instead of two,
# because a warm machine goes back 30 s after a call: there is no time to join A's weights here and send
# them back. Stage 10 shipped A: its B gained +0.01 dB on CBSD68 but lost 0.1-0.4 dB on grey photos and
# 4:2:0 JPEGs (models/README.md), so measure those before shipping a B. Since stage 11 a fifth of the
# samples are grey (GREY_PROB, train --grey-prob), as in the CPU stages that taught the shipped network grey
# photos and 4:2:0 JPEGs (about +1 dB there).
# Writes to OUT_DIR (= $OUT of the device tool): gpu.txt, a_train.log, b_train.log (each with its
# validation curve from step 0), gpu_util.csv (nvidia-smi every 10 s) and each run's EMA weights split
# into 15 MB parts (a GPU machine sends back files of at most 16 MiB), A's before B starts, so a call
# cut short still returns A:
#   cat OUT_DIR/b.safetensors.part-* > b.safetensors
# The device tool carries at most 64 MiB (working tree + training data): move
# models/ddpm_denoiser_fast.safetensors and models/ddpm_denoiser_camera.safetensors out of the tree for
# the call (the script does not use them).
# DEVICE=cpu STEPS=2 BATCH=2 CROP=32 tries the script without a GPU.
set -euo pipefail
TRAIN=${1:?training photos folder}
VAL=${2:?validation photos folder}
OUT=${3:?output folder}
SECONDS_A=${4:-370}
SECONDS_B=${5:-140}
DEVICE=${DEVICE:-cuda}
mkdir -p "$OUT"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if command -v nvidia-smi >/dev/null && [ "$DEVICE" = cuda ]; then
  nvidia-smi --query-gpu=name,memory.total --format=csv >"$OUT/gpu.txt" 2>&1 || true
  nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 10 >"$OUT/gpu_util.csv" 2>&1 &
  trap 'kill $!; rm -rf "$work"' EXIT
fi

train() {  # INIT NAME LR SECONDS
  python -m desktop_denoiser.cli train "$TRAIN" --val "$VAL" --out "$work/$2" --init "$1" --device "$DEVICE" \
    --steps "${STEPS:-1000000}" --time-limit "$4" --batch-size "${BATCH:-256}" --crop "${CROP:-128}" --lr "$3" \
    --corr-prob "${CORR_PROB:-0.3}" --grey-prob "${GREY_PROB:-0.2}" --val-every 1000 --save-every 100000 --threads 8 \
    --export "$work/$2.safetensors" 2>&1 | tr '\r' '\n' | grep -v '^train ' >"$OUT/$2_train.log"
  split -b 15M "$work/$2.safetensors" "$OUT/$2.safetensors.part-"
}

train models/ddpm_denoiser.safetensors a "${LR_A:-8e-5}" "$SECONDS_A"
if [ "$SECONDS_B" != 0 ]; then
  train "$work/a.safetensors" b "${LR_B:-5e-5}" "$SECONDS_B"
fi
ls -l "$OUT"
