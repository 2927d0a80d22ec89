#!/usr/bin/env bash
# 2-process (torchrun, gloo) vs 1-process fine-tune of the built-in model on the WIDER training
# subset, same global batch (2 x 4 = 8), 2 epochs; the 2-process run is killed during epoch 2 and
# resumed with --resume; a third, single-process run with 2 threads instead of 1 measures how far two runs
# that differ only in float summation order end apart (NOISE_FLOOR=0 skips it). All are exported and evaluated on val-dev (official protocol, original size).
# Usage: [LR=1e-5] benchmarks/training/ddp_finetune.sh [OUT_DIR]   (run from the repository root; ~1 hour on 2 cores)
set -euo pipefail
OUT=${1:-runs/ddp_check}
SHARED=${SHARED:-../shared}
WIDER=$SHARED/data/widerface
LR=${LR:-1e-4}  # LR=1e-5: a fine-tune that keeps the built-in model's accuracy (README)
COMMON=(--preset mobilenet0.25 --init builtin --loss biubug6 --lr "$LR" --warmup-lr "$LR" --freeze-bn
        --epochs 2 --data "$WIDER/train-subset/label.txt" --images "$WIDER/train-subset/images"
        --workers 1 --device cpu --log-every 10 --no-progress)
mkdir -p "$OUT"

# 2 processes x batch 4, killed once epoch 0 is saved and epoch 1 has begun, then resumed
torchrun --nproc_per_node 2 --master_addr 127.0.0.1 --master_port 29533 -m retinakit train "${COMMON[@]}" \
    --batch-size 4 --out "$OUT/two" &
PID=$!
until [ -f "$OUT/two/log.jsonl" ] && grep -q '"epoch": 1, "step": 20' "$OUT/two/log.jsonl"; do
    kill -0 $PID 2>/dev/null || { echo "torchrun ended before the kill"; exit 1; }
    sleep 5
done
kill -TERM $PID; wait $PID || true
echo "killed during epoch 1 at: $(tail -n 1 "$OUT/two/log.jsonl")"
torchrun --nproc_per_node 2 --master_addr 127.0.0.1 --master_port 29534 -m retinakit train "${COMMON[@]}" \
    --batch-size 4 --out "$OUT/two" --resume

# 1 process x batch 8
OMP_NUM_THREADS=1 python -m retinakit train "${COMMON[@]}" --batch-size 8 --out "$OUT/one"  # 1 thread, as each torchrun process

# the noise floor: the same single-process run with 2 threads (only float summation order differs)
if [ "${NOISE_FLOOR:-1}" = 1 ]; then
    OMP_NUM_THREADS=2 python -m retinakit train "${COMMON[@]}" --batch-size 8 --out "$OUT/one-2threads"
fi

for run in two one one-2threads; do
    [ -d "$OUT/$run" ] || continue
    python -m retinakit export "$OUT/$run/model.safetensors" -o "$OUT/$run/model.onnx"
    python -m retinakit evaluate --ground-truth "$WIDER/ground_truth" --images "$WIDER/val-dev/images" \
        --subset "$WIDER/val-dev/image_list.txt" --protocol original --weights "$OUT/$run/model.onnx" \
        --output "$OUT/$run/eval" --no-progress | tee "$OUT/$run/eval.txt"
done
grep -h summary "$OUT"/*/log.jsonl
