"""Throughput, CPU use and peak memory of ``retinakit batch`` on val-dev photos (../shared).

    flock /tmp/retinakit-cpu.lock python benchmarks/batch_throughput.py [--images 1000] [--memory 1000,5000]

Runs, each a fresh ``retinakit batch`` process on the same first N val-dev images (original size, the
``detect`` defaults): one process on one core (``--workers 0 --threads 1``: decode and detect in
turn), the local engine on all cores (default flags), and the Ray engine on a local instance. Prints
images/s (the engine's own figure: Ray's start-up excluded, shown apart as wall time), the efficiency
per core against the one-process figure, the machine's CPU utilisation during the run (from
/proc/stat, all processes), the peak resident memory of the whole process tree (RSS summed over
all descendants, sampled every 0.1 s) and the cost of 10 million images in CPU core-hours. Then the
local engine's peak memory on ``--memory`` listings (the same first N images repeated under distinct
path strings, so that only the collection size changes), which must not grow with the collection.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

VALDEV = Path(__file__).resolve().parents[3] / "shared" / "data" / "widerface" / "val-dev"


@dataclass
class Run:
    name: str
    images: int
    wall: float
    rate: float  # the engine's images/s
    cpu: float  # machine CPU utilisation, 0..1
    peak_mb: float


def cpu_times() -> tuple[int, int]:
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def tree_rss_mb(root: int) -> float:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        for child, parent in parents.items():
            if parent == pid and child not in tree:
                tree.add(child)
                frontier.append(child)
    total = 0
    for pid in tree:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def run_batch(name: str, listing: Path, out: Path, flags: list[str]) -> Run:
    command = [sys.executable, "-m", "retinakit", "batch", str(listing), str(out), "--root", str(VALDEV / "images")]
    command += ["--no-progress", *flags]
    busy0, total0 = cpu_times()
    start = time.perf_counter()
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    peak = [0.0]

    def sample() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], tree_rss_mb(proc.pid))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = proc.communicate()
    wall = time.perf_counter() - start
    sampler.join()
    busy1, total1 = cpu_times()
    found = re.search(r"(\d+) images in \d+ new shards .*?, ([\d.]+) images/s", err)
    if proc.returncode not in (0, 1) or found is None:
        raise SystemExit(f"{name} failed ({proc.returncode}):\n{err}")
    return Run(name, int(found.group(1)), wall, float(found.group(2)), (busy1 - busy0) / (total1 - total0), peak[0])


def listing(names: list[str], count: int, path: Path) -> Path:
    """``count`` paths: ``names`` repeated, each repetition under another spelling (event/./name)."""
    lines = []
    for i in range(count):
        event, file = names[i % len(names)].split("/")
        lines.append(f"{event}/{'./' * (i // len(names))}{file}")
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--memory", default="1000,5000", help="listing sizes for the memory check ('' to skip)")
    parser.add_argument(
        "--ray", default="--num-cpus 2 --actors 2 --decode-cpus 0", help="flags of the Ray run ('' to skip Ray)"
    )
    parser.add_argument("--memory-flags", default="", help="extra flags of the memory runs, e.g. '--max-size 640'")
    parser.add_argument("--skip", default="", help="comma-separated runs to skip: single, local")
    args = parser.parse_args()
    if not VALDEV.is_dir():
        raise SystemExit(f"{VALDEV} not found")
    names = (VALDEV / "image_list.txt").read_text().split()
    cores = os.cpu_count() or 1
    runs: list[tuple[Run, int]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        images = listing(names, args.images, work / "images.txt")
        plan = [
            ("single", "1 process, 1 core (--workers 0 --threads 1)", ["--workers", "0", "--threads", "1"], 1),
            ("local", f"local engine, {cores} cores (defaults)", [], cores),
        ]
        if args.ray:
            plan.append(
                ("ray", f"Ray engine, local instance ({args.ray})", ["--engine", "ray", *args.ray.split()], cores)
            )
        for key, label, flags, used in plan:
            if key in args.skip.split(","):
                continue
            runs.append((run_batch(label, images, work / key, flags), used))
            print(f"done: {runs[-1][0]}", file=sys.stderr, flush=True)
        memory = []
        for count in [int(v) for v in args.memory.split(",") if v]:
            run = run_batch(
                f"local engine, {count} images",
                listing(names[: args.images], count, work / f"m{count}.txt"),
                work / f"m{count}",
                args.memory_flags.split(),
            )
            memory.append(run)
            print(f"done: {run}", file=sys.stderr, flush=True)

    single = next((r.rate for r, _ in runs if r.name.startswith("1 process")), None)
    print(f"\n{args.images} val-dev images, original size, {cores}-core machine\n")
    print("| run | images/s | wall s | efficiency / core | CPU use | peak tree RSS MB | core-hours / 10M images |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for run, used in runs:
        efficiency = f"{100 * run.rate / used / single:.0f}%" if single else "-"
        core_hours = 10_000_000 / (run.rate / used) / 3600
        print(
            f"| {run.name} | {run.rate:.1f} | {run.wall:.1f} | {efficiency} | {100 * run.cpu:.0f}% | "
            f"{run.peak_mb:.0f} | {core_hours:.0f} |"
        )
    if memory:
        print("\n| local engine, listing size | images/s | peak tree RSS MB |")
        print("| --- | --- | --- |")
        for run in memory:
            print(f"| {run.images} | {run.rate:.1f} | {run.peak_mb:.0f} |")


if __name__ == "__main__":
    main()
