"""``retinakit batch SOURCE OUTPUT``: resumable face detection over a collection into Parquet shards."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from retinakit.cli.common import EXIT_FAILED, EXIT_OK, add_detector_flags, add_progress_flag, default, detector_options


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "batch",
        help="detect faces in a large collection into Parquet shards (resumable; local or Ray)",
        description="Rerun the same command after a crash or kill: finished shards are kept, the rest is redone.",
    )
    p.add_argument("source", help="directory (recursive), glob pattern, or .txt/.csv/.parquet list of paths")
    p.add_argument("output", help="directory of Parquet shards (part-*.parquet) and the job manifest")
    p.add_argument(
        "--root",
        help="base of relative paths in a listing and of output names (default: the listing's folder, or the source)",
    )
    p.add_argument("--shard-size", type=int, default=1000, help=f"images per Parquet shard {default(1000)}")
    p.add_argument(
        "--crops", metavar="DIR", help="also write aligned face crops here, <path>_<face>.png (default: none)"
    )
    p.add_argument("--crop-size", type=int, default=112, help=f"crop size in pixels {default(112)}")
    p.add_argument("--save-images", metavar="DIR", help="also write annotated copies here (default: none)")
    p.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help=f"local processes or a Ray cluster {default('local')}",
    )
    p.add_argument("--workers", type=int, help="local: decoding processes (default: one per CPU; 0: in-process)")
    p.add_argument("--address", help="ray: address of a running cluster (default: start a local instance)")
    p.add_argument("--num-cpus", type=int, help="ray: CPUs of the local instance (default: all)")
    p.add_argument("--actors", type=int, help="ray: detector actors (default: as many as the CPUs allow)")
    p.add_argument("--actor-cpus", type=int, default=1, help=f"ray: CPUs (= inference threads) per actor {default(1)}")
    p.add_argument("--decode-cpus", type=float, default=0.5, help=f"ray: CPUs per decoding task {default(0.5)}")
    p.add_argument(
        "--stall-timeout",
        type=float,
        default=300.0,
        help=f"ray: stop (resumable) when no chunk finishes for this many seconds, naming the stage {default(300.0)}",
    )
    add_progress_flag(p)
    add_detector_flags(p, None)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from retinakit.apps.batch import BatchConfig, ShardRecord, run_batch
    from retinakit.detector import DetectorConfig

    config = BatchConfig(
        source=args.source,
        output=args.output,
        root=args.root,
        detector=DetectorConfig(**detector_options(args)),
        shard_size=args.shard_size,
        crops=args.crops,
        crop_size=args.crop_size,
        save_images=args.save_images,
        engine=args.engine,
        workers=args.workers,
        address=args.address,
        num_cpus=args.num_cpus,
        actors=args.actors,
        actor_cpus=args.actor_cpus,
        decode_cpus=args.decode_cpus,
        stall_timeout=args.stall_timeout,
    )
    bar = None
    if not args.no_progress:
        from tqdm import tqdm

        bar = tqdm(unit="img", file=sys.stderr, dynamic_ncols=True, disable=None)

    def on_shard(record: ShardRecord) -> None:
        if bar is not None:
            bar.update(record.rows)

    try:
        report = run_batch(config, on_shard=on_shard)
    finally:
        if bar is not None:
            bar.close()
    if report.total_images == 0:
        print(f"retinakit batch: no images found in {args.source}", file=sys.stderr)
        return EXIT_FAILED
    usage = report.cpu_utilisation
    print(
        f"retinakit batch: {report.images} images in {report.shards_written} new shards "
        f"({report.shards_skipped} done before), {report.images_per_second:.1f} images/s"
        + (f", CPU {100 * usage:.0f}% of all cores" if usage is not None else ""),
        file=sys.stderr,
    )
    print(
        f"retinakit batch: {args.output}: {report.total_images} images, {report.total_errors} with an error "
        "(status='error' rows)",
        file=sys.stderr,
    )
    return EXIT_FAILED if report.total_errors else EXIT_OK
