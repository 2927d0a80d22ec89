"""A real kill: ``kill -9`` a running ``retinakit batch`` on all val-dev images, rerun it, compare.

    flock /tmp/retinakit-cpu.lock python benchmarks/batch_kill.py [--shard-size 100] [--kill-after 450]

1. An uninterrupted run of the local engine over ``../shared/.../val-dev/images`` (the reference).
2. The same command into another directory, killed with SIGKILL (its whole process group: the
   engine and its decoding workers) once ``--kill-after`` images are done plus a random part of a shard,
   so the kill lands inside a shard.
3. The same command again: it resumes. Checks: row count = image count, no duplicate path, the
   table equal to the reference (same detections), no temporary file left. Prints the figures.

With ``--decoder``, step 2 kills one decoding process instead (SIGKILL, as the out-of-memory killer
would) and the job must finish by itself in that same run, with the same checks and no error row.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from retinakit.apps.batch.shards import MANIFEST, read_manifest

IMAGES = Path(__file__).resolve().parents[3] / "shared" / "data" / "widerface" / "val-dev" / "images"


def command(images: Path, out: Path, shard_size: int) -> list[str]:
    return [sys.executable, "-m", "retinakit", "batch", str(images), str(out), "--shard-size", str(shard_size)]


def done_rows(out: Path) -> int:
    return sum(record.rows for record in read_manifest(out / MANIFEST))  # a line torn by the kill is skipped


def decoder_pids(parent: int) -> list[int]:
    """The decoding processes of the job ``parent``: its children started by multiprocessing's spawn."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{entry}/stat").read_text()
            if (
                int(stat.rsplit(")", 1)[1].split()[1]) == parent
                and b"spawn_main" in Path(f"/proc/{entry}/cmdline").read_bytes()
            ):
                found.append(int(entry))
    return sorted(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shard-size", type=int, default=100)
    parser.add_argument("--kill-after", type=int, default=450, help="images recorded before the kill is armed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--images", type=Path, default=IMAGES, help="image folder (default: all val-dev images)")
    parser.add_argument("--decoder", action="store_true", help="kill one decoding process, not the job")
    args = parser.parse_args()
    if not args.images.is_dir():
        raise SystemExit(f"{args.images} not found")
    import pyarrow.dataset as ds

    count = sum(1 for _ in args.images.rglob("*.jpg"))
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        reference, resumed = Path(tmp) / "reference", Path(tmp) / "resumed"
        start = time.perf_counter()
        subprocess.run([*command(args.images, reference, args.shard_size), "--no-progress"], check=False)
        reference_seconds = time.perf_counter() - start

        proc = subprocess.Popen(
            [*command(args.images, resumed, args.shard_size), "--no-progress"], start_new_session=True
        )
        while done_rows(resumed) < args.kill_after and proc.poll() is None:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.2, 0.8) * reference_seconds * args.shard_size / count)  # into the next shard
        if args.decoder:
            victims, recorded = decoder_pids(proc.pid), done_rows(resumed)
            os.kill(victims[0], signal.SIGKILL)
            code = proc.wait()
            print(f"killed decoding process {victims[0]} (of {len(victims)}) with {recorded} images recorded")
            print(f"the run went on by itself: exit status {code}")
            killed_at, leftovers, resume_seconds = done_rows(resumed), [], 0.0
        else:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            killed_at = done_rows(resumed)
            leftovers = sorted(p.name for p in resumed.iterdir())
            start = time.perf_counter()
            subprocess.run([*command(args.images, resumed, args.shard_size), "--no-progress"], check=False)
            resume_seconds = time.perf_counter() - start

        a = ds.dataset(reference, format="parquet").to_table().sort_by("path")
        b = ds.dataset(resumed, format="parquet").to_table().sort_by("path")
        paths = b.column("path").to_pylist()
        print(f"val-dev images: {count}; shards of {args.shard_size}; reference run {reference_seconds:.1f} s")
        if not args.decoder:
            print(f"killed (SIGKILL, process group) with {killed_at} images recorded; files then: {len(leftovers)}")
            print(f"  (temporary files: {[n for n in leftovers if n.endswith('.tmp')]})")
            print(f"resumed run: {resume_seconds:.1f} s")
        print(f"rows: {b.num_rows}  distinct paths: {len(set(paths))}  image count: {count}")
        print(f"equal to the uninterrupted run (all columns, all detections): {a.equals(b)}")
        errors = b.column("status").to_pylist().count("error")
        print(f"faces: {sum(b.column('num_faces').to_pylist())}; error rows: {errors}")
        print(f"temporary files left: {[p.name for p in resumed.glob('.*.tmp')]}")
        ok = b.num_rows == count == len(set(paths)) and a.equals(b) and (errors == 0 or not args.decoder)
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
