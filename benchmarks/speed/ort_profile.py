"""Where an ONNX model's time goes, per operator type and per node, from ONNX Runtime's profiler.

    python -m benchmarks.speed.ort_profile src/retinakit/weights/retinaface_mobilenet0.25_int8.onnx --nodes 20

Runs the model on a random VGA input (uint8 NHWC for models with the image input, float NCHW
otherwise) with 2 intra-op threads, ``--runs`` times, and prints mean ms per run. Asserts nothing.
"""

from __future__ import annotations

import argparse
import collections
import json
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--nodes", type=int, default=0, help="also print the slowest N nodes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        options.enable_profiling = True
        options.intra_op_num_threads = 2
        options.profile_file_prefix = str(Path(tmp) / "profile")
        session = ort.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])
        spec = session.get_inputs()[0]
        rng = np.random.default_rng(0)
        if "uint8" in spec.type:
            x = rng.integers(0, 256, (1, 480, 640, 3), dtype=np.uint8)
        else:
            x = rng.normal(size=(1, 3, 480, 640)).astype(np.float32)
        for _ in range(args.runs):
            session.run(None, {spec.name: x})
        events = json.loads(Path(session.end_profiling()).read_text())
    by_op: collections.Counter[str] = collections.Counter()
    by_node: collections.Counter[str] = collections.Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            by_op[event["args"]["op_name"]] += event["dur"]
            by_node[f"{event['name'].removesuffix('_kernel_time')} ({event['args']['op_name']})"] += event["dur"]
    total = sum(by_op.values())
    print(f"{args.model}: {total / args.runs / 1000:.2f} ms of kernel time per run ({args.runs} runs)")
    for op, us in by_op.most_common():
        print(f"  {op:<28} {us / args.runs / 1000:7.3f} ms  {100 * us / total:5.1f}%")
    for node, us in by_node.most_common(args.nodes):
        print(f"  {node:<90} {us / args.runs / 1000:7.3f} ms")


if __name__ == "__main__":
    main()
