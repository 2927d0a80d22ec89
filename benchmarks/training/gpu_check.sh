#!/usr/bin/env bash
# GPU check, ready to run on a machine with a CUDA GPU (and ../shared with the WIDER training subset):
# installs PyTorch if it is missing, uses this checkout's retinakit (src/), then trains every preset
# for a few hundred steps with AMP and prints images/s, peak GPU memory and the loss curve. Ends within
# 10 minutes (a 540 s budget shared by the presets, the whole run capped at 590 s). Without a GPU, or
# with --dry, it runs 3 CPU steps per preset at 160 px instead.
#   benchmarks/training/gpu_check.sh [--dry] [--steps 200] [--presets mobilenet0.25,resnet152-paper]
set -euo pipefail
cd "$(dirname "$0")/../.."
SHARED=${SHARED:-../shared}
python -c "import torch, safetensors, onnx" 2>/dev/null || pip install "torch>=2.2" safetensors onnx
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's code, installed or not
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
exec timeout 590 python -m benchmarks.training.gpu_check --shared "$SHARED" "$@"
