#!/usr/bin/env bash
# Per-step training loss of three runs that should compute the same thing: 1 process x batch 8 with 1 thread,
# the same with 2 threads (only the float summation order differs), and 2 processes (torchrun, gloo) x batch 4.
# Built-in model, WIDER training subset, 12 steps, lr 1e-4. Usage: benchmarks/training/ddp_trajectory.sh [OUT_DIR] (~3 min)
set -eu
W=${SHARED:-../shared}/data/widerface  # run from the repository root
OUT=${1:-runs/ddp_trajectory}
C=(--preset mobilenet0.25 --init builtin --loss biubug6 --lr 1e-4 --warmup-lr 1e-4 --freeze-bn --epochs 1
   --max-steps-per-epoch 12 --data $W/train-subset/label.txt --images $W/train-subset/images --workers 1 --device cpu --log-every 1 --no-progress)
rm -rf "$OUT"; mkdir -p "$OUT"
OMP_NUM_THREADS=1 python -m retinakit train "${C[@]}" --batch-size 8 --out "$OUT"/one1 >/dev/null 2>&1
OMP_NUM_THREADS=2 python -m retinakit train "${C[@]}" --batch-size 8 --out "$OUT"/one2 >/dev/null 2>&1
torchrun --nproc_per_node 2 --master_addr 127.0.0.1 --master_port 29555 -m retinakit train "${C[@]}" --batch-size 4 --out "$OUT"/two >/dev/null 2>&1
python - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
runs = {n: [json.loads(l) for l in open(f"{out}/{n}/log.jsonl") if '"summary"' not in l] for n in ("one1", "one2", "two")}
print("step  total loss: 1 process 1 thread | 1 process 2 threads | 2 processes")
for i in range(len(runs["one1"])):
    print(f"{runs['one1'][i]['step']:4d}", *[f"{runs[n][i]['total']:.6f}" for n in runs])
PY
