"""Memory of the local batch engine over time, per process: does it grow with the collection?

    flock /tmp/retinakit-cpu.lock python benchmarks/batch_memory.py --counts 1000,5000 --flags "--max-size 640"

Each count is a fresh process running ``run_batch`` (the local engine, default workers) on a listing of
the first ``--images`` val-dev images repeated under distinct path strings (so only the collection size
changes, not the images). A thread in that process samples every ``--every`` seconds: images done
(finished shards), the RSS of the main process and of each decoding process, the main process's glibc
heap (bytes in use, and free bytes the allocator keeps: RSS that is free to glibc is fragmentation,
not data) and the bytes held by pyarrow's memory pool. Prints the curve of every run, then a summary:
peak RSS per process kind and the peak of the summed tree. ``--env NAME=VALUE`` sets environment
variables of the runs (e.g. ``MALLOC_ARENA_MAX=2``) to test a suspect.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from batch_kill import decoder_pids  # (this folder is on sys.path)
from batch_throughput import VALDEV, listing  # the same listings

BENCHMARKS = Path(__file__).resolve().parent


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """Resident memory of ``pid`` now (``VmRSS``) or at its peak so far (``VmHWM``), MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


class MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def glibc_mb() -> tuple[float, float]:
    """This process's glibc heap: (bytes in use, mmapped blocks included; free bytes kept in the arenas), MB."""
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    info = libc.mallinfo2()
    return (info.uordblks + info.hblkhd) / 2**20, info.fordblks / 2**20


def child(listing_path: str, out: str, flags: list[str], every: float) -> None:
    """One run in this process; prints one JSON line per sample, then a summary line."""
    import pyarrow as pa

    from retinakit.apps.batch import BatchConfig, run_batch
    from retinakit.cli.common import add_detector_flags, detector_options
    from retinakit.detector import DetectorConfig

    parser = argparse.ArgumentParser()
    add_detector_flags(parser, None)
    detector = detector_options(parser.parse_args(flags))

    done = [0]
    stop = threading.Event()
    start = time.perf_counter()

    def sample() -> None:
        while True:
            own = os.getpid()
            try:
                decoders = [round(rss_mb(pid)) for pid in decoder_pids(own)]
            except OSError:
                decoders = []
            line = {
                "t": round(time.perf_counter() - start, 1),
                "images": done[0],
                "main": round(rss_mb(own)),
                "main_hwm": round(rss_mb(own, "VmHWM")),
                "main_file": round(rss_mb(own, "RssFile")),
                "decoders": decoders,
                "arrow": round(pa.total_allocated_bytes() / 2**20, 1),
                "arrow_peak": round(pa.default_memory_pool().max_memory() / 2**20, 1),
            }
            line["malloc_used"], line["malloc_free"] = (round(v) for v in glibc_mb())
            print(json.dumps(line), flush=True)
            if stop.is_set():
                return  # the last sample: after the last shard was written
            stop.wait(every)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    config = BatchConfig(listing_path, out, root=str(VALDEV / "images"), detector=DetectorConfig(**detector))
    report = run_batch(config, on_shard=lambda record: done.__setitem__(0, done[0] + record.rows))
    stop.set()
    sampler.join()
    print(json.dumps({"summary": True, "images": report.images, "rate": round(report.images_per_second, 1)}))


def run(count: int, names: list[str], work: Path, args: argparse.Namespace) -> tuple[list[dict], dict]:
    path = listing(names[: args.images], count, work / f"m{count}.txt")
    env = dict(os.environ)
    env.update(dict(kv.split("=", 1) for kv in args.env))
    command = [sys.executable, str(Path(__file__).resolve()), "--child", str(path), str(work / f"out{count}")]
    command += ["--every", str(args.every), "--flags", args.flags]
    proc = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"run of {count} failed ({proc.returncode}):\n{proc.stderr}")
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return [x for x in lines if "summary" not in x], next(x for x in lines if "summary" in x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts", default="1000,5000", help="listing sizes")
    parser.add_argument("--images", type=int, default=1000, help="distinct val-dev images repeated")
    parser.add_argument("--flags", default="", help="detector flags of the runs, e.g. '--max-size 640'")
    parser.add_argument("--every", type=float, default=2.0, help="seconds between samples")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the runs (repeatable)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child, args.flags.split(), args.every)
        return
    if not VALDEV.is_dir():
        raise SystemExit(f"{VALDEV} not found")
    names = (VALDEV / "image_list.txt").read_text().split()
    summary = []
    with tempfile.TemporaryDirectory() as tmp:
        for count in [int(v) for v in args.counts.split(",") if v]:
            samples, result = run(count, names, Path(tmp), args)
            print(f"\n{count} images ({args.flags or 'defaults'}{', ' + ' '.join(args.env) if args.env else ''}):")
            print("  t s | images done | main MB (file-backed) | decoders MB | tree MB | main malloc in use / free MB")
            for s in samples:
                tree = s["main"] + sum(s["decoders"])
                print(
                    f"  {s['t']:5.0f} | {s['images']:5d} | {s['main']:4d} ({s['main_file']:3d}) | "
                    f"{'+'.join(map(str, s['decoders'])):>9} | {tree:4d} | {s['malloc_used']:4d} / {s['malloc_free']}"
                )
            print(
                f"  pyarrow pool: peak {samples[-1]['arrow_peak']} MB allocated, {samples[-1]['arrow']} MB at the end"
            )
            print("  by images recorded (while the next shard is made): max main / max decoder / max tree RSS MB")
            shard = sorted({s["images"] for s in samples})
            for done in shard:
                part = [s for s in samples if s["images"] == done]
                print(
                    f"    {done:5d} recorded: {max(s['main'] for s in part)} / "
                    f"{max((max(s['decoders']) for s in part if s['decoders']), default=0)} / "
                    f"{max(s['main'] + sum(s['decoders']) for s in part)}"
                )
            summary.append(
                (
                    count,
                    result["rate"],
                    max(s["main_hwm"] for s in samples),
                    max((max(s["decoders"]) for s in samples if s["decoders"]), default=0),
                    max(s["main"] + sum(s["decoders"]) for s in samples),
                )
            )
    print("\n| listing | images/s | peak main RSS MB (VmHWM) | peak decoder RSS MB (largest) | peak tree RSS MB |")
    print("| --- | --- | --- | --- | --- |")
    for count, rate, main_mb, decoder_mb, tree_mb in summary:
        print(f"| {count:,} | {rate} | {main_mb} | {decoder_mb} | {tree_mb} |")


if __name__ == "__main__":
    main()
