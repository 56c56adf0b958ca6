#!/usr/bin/env bash
# One lent GPU slot of training from the shipped model (model card: stage 8 and "Next").
#
#   bash models/gpu_grow.sh TRAIN_DIR VAL_DIR OUT_DIR [TRAIN_SECONDS] [BASE_CHANNELS]
#
# BASE_CHANNELS above the shipped network's width grows it first (core/growth.py: same function at step 0);
# left out or equal, the run continues training the shipped network as it is. Run from the repository
# root on the GPU machine, with OUT_DIR = $OUT of the device tool. It writes there: gpu.txt, gpu_tests.log
# (the CUDA tests), bench_train_grown_bN.json (training it/s at batch 128 and 256), gpu_util.csv
# (nvidia-smi every 10 s), grow_train.log (the batch chosen, then the run with its validation curve from
# step 0 = the shipped model's) and the EMA weights split into 15 MB parts (a GPU machine sends back
# files of at most 16 MiB):
#   cat OUT_DIR/grown.safetensors.part-* > grown.safetensors
# LR (8e-5) and CORR_PROB (0.3, the share of camera-like noise samples) set the run's options.
# DEVICE=cpu STEPS=3 BENCH_STEPS=1 BENCH_WARMUP=1 BATCHES=2 CROP=32 tries the script without a GPU.
# The device tool carries at most 64 MiB (working tree + training data): move
# models/ddpm_denoiser_fast.safetensors and models/ddpm_denoiser_camera.safetensors out of the tree for
# the call (the script does not use them).
set -euo pipefail
TRAIN=${1:?training photos folder}
VAL=${2:?validation photos folder}
OUT=${3:?output folder}
SECONDS_=${4:-540}
BASE=${5:-$(python -c "from desktop_denoiser.core.checkpoint import load_model as l
from desktop_denoiser.paths import default_model_path as p
print(l(p()).model.config.base_channels)")}
DEVICE=${DEVICE:-cuda}
BENCH_STEPS=${BENCH_STEPS:-60}
BATCHES=${BATCHES:-128 256}  # batch sizes timed by bench train
BATCH=${BATCH:-auto}         # batch size of the training run; auto: the timed one with the most pixels/s,
                             # if it beats the smallest timed batch by >= 1.25x (else the smallest)
CROP=${CROP:-128}
mkdir -p "$OUT"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

nvidia-smi --query-gpu=name,memory.total --format=csv >"$OUT/gpu.txt" 2>&1 || true
python -m pytest -q tests/test_training.py -k cuda >"$OUT/gpu_tests.log" 2>&1 || true
python - "$work/grown_init.safetensors" "$BASE" <<'EOF'
import sys
from dataclasses import replace
from desktop_denoiser.core.checkpoint import load_model, save_model
from desktop_denoiser.core.growth import grow_unet
from desktop_denoiser.paths import default_model_path
lm = load_model(default_model_path())
grown = grow_unet(lm.model, replace(lm.model.config, base_channels=int(sys.argv[2])))
save_model(sys.argv[1], grown, lm.schedule.config, {"grown_from": lm.model.config.to_dict()})
EOF
for bs in $BATCHES; do
  python benchmarks/bench_train.py --device "$DEVICE" --model "$work/grown_init.safetensors" --batch-size "$bs" \
    --crop "$CROP" --data "$TRAIN" --steps "$BENCH_STEPS" --warmup "${BENCH_WARMUP:-20}" --variants eager --threads 8 \
    --json "$OUT/bench_train_grown_b$bs.json" --quiet || true
done
if [ "$BATCH" = auto ]; then
  BATCH=$(python -m desktop_denoiser.bench.train "$OUT" $BATCHES)
fi
echo "batch size $BATCH (timed: $BATCHES)" >"$OUT/grow_train.log"
if command -v nvidia-smi >/dev/null && [ "$DEVICE" = cuda ]; then
  nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 10 >"$OUT/gpu_util.csv" 2>&1 &
  trap 'kill $!; rm -rf "$work"' EXIT
fi
python -m desktop_denoiser.cli train "$TRAIN" --val "$VAL" --out "$work/run" \
  --init models/ddpm_denoiser.safetensors --grow --base-channels "$BASE" --device "$DEVICE" \
  --steps "${STEPS:-1000000}" --time-limit "$SECONDS_" --batch-size "$BATCH" --crop "$CROP" --lr "${LR:-8e-5}" \
  --corr-prob "${CORR_PROB:-0.3}" --val-every 1000 --save-every 100000 --threads 8 --export "$work/grown.safetensors" 2>&1 \
  | tr '\r' '\n' | grep -v '^train ' >>"$OUT/grow_train.log"
split -b 15M "$work/grown.safetensors" "$OUT/grown.safetensors.part-"
ls -l "$OUT"
