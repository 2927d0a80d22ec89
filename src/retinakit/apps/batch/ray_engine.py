"""The Ray engine (``engine="ray"``): Ray Data decodes in tasks, detects in an actor pool, same shards as local.

Pipeline: the pending shards' paths go into the object store one Arrow table per shard (the driver
holds only references), ``map_batches`` tasks decode them, ``map_batches`` over an actor pool runs one
:class:`~retinakit.Detector` per actor (its threads = the actor's CPUs) and returns rows of the one
schema; the driver collects each shard's rows and writes the shard exactly as the local engine does
(atomic file, then the manifest), so both engines resume each other's jobs and give identical files.
The images must be readable from every node (a shared file system).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from retinakit.apps.batch.job import (
    BatchConfig,
    BatchError,
    BatchReport,
    Item,
    decode,
    detect_items,
    write_image_outputs,
)
from retinakit.apps.batch.schema import COLUMNS, arrow_schema
from retinakit.apps.batch.shards import Hook, ShardRecord, ShardStore

if TYPE_CHECKING:
    import pyarrow as pa

RAY_EXTRA = "retinakit batch --engine ray needs the 'ray' extra: pip install 'retinakit[ray]'"


def run_ray(
    config: BatchConfig,
    store: ShardStore,
    shards: Iterable[tuple[int, list[str]]],
    base: Path,
    on_shard: Callable[[ShardRecord], None],
    hook: Hook,
) -> BatchReport:
    """Process the pending ``shards`` on Ray (joining ``config.address`` or starting a local instance)."""
    try:
        import ray
    except ImportError:
        raise ImportError(RAY_EXTRA) from None
    import pyarrow as pa
    import pyarrow.compute as pc

    started = not ray.is_initialized()
    if started:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        if config.address is not None:
            ray.init(address=config.address, log_to_driver=False)
        else:
            ray.init(num_cpus=config.num_cpus, include_dashboard=False, log_to_driver=False)
    start = time.perf_counter()  # after start-up: the report's images/s is the engine's, not Ray's start
    try:
        sizes: dict[int, int] = {}
        refs: list[Any] = []  # object refs, one Arrow table of paths per shard
        for index, paths in shards:
            sizes[index] = len(paths)
            table = pa.table(
                {
                    "shard": pa.array([index] * len(paths), pa.int64()),
                    "position": pa.array(range(len(paths)), pa.int64()),
                    "path": pa.array(paths, pa.string()),
                }
            )
            refs.append(ray.put(table))
        if not refs:
            return BatchReport(0, 0, 0, 0, time.perf_counter() - start)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        actors = config.actors or max(1, int((cpus - config.decode_cpus) // config.actor_cpus))
        detector = dataclasses.replace(config.detector, threads=config.actor_cpus)
        dataset = (
            ray.data.from_arrow_refs(refs)
            .map_batches(
                _decode_batch,
                batch_size=config.detector.batch_size,
                batch_format="pyarrow",
                num_cpus=config.decode_cpus,
            )
            .map_batches(
                _DetectActor,
                fn_constructor_kwargs={"config": dataclasses.replace(config, detector=detector), "base": base},
                batch_size=config.detector.batch_size,
                batch_format="pyarrow",
                compute=ray.data.ActorPoolStrategy(size=actors),
                num_cpus=config.actor_cpus,
            )
        )
        images = errors = written = 0
        collected: dict[int, list[pa.Table]] = {}
        counts: dict[int, int] = {}
        for output in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
            batch = cast("pa.Table", output)
            for index in np.unique(batch.column("shard").to_numpy()).tolist():
                part = batch.filter(pc.equal(batch.column("shard"), index))
                collected.setdefault(index, []).append(part)
                counts[index] = counts.get(index, 0) + part.num_rows
                if counts[index] == sizes[index]:
                    rows = pa.concat_tables(collected.pop(index)).sort_by("position")
                    for position in rows.column("position").to_pylist():
                        hook("row", index * config.shard_size + position)
                    record = store.write(index, rows.select(list(COLUMNS)).to_pylist())
                    images, errors, written = images + record.rows, errors + record.errors, written + 1
                    on_shard(record)
        if collected:
            raise BatchError(f"Ray returned incomplete shards {sorted(collected)}; rerun to redo them")
        return BatchReport(images, errors, written, 0, time.perf_counter() - start)
    finally:
        if started:
            ray.shutdown()


def _decode_batch(batch: pa.Table) -> pa.Table:
    """Decode a batch of paths: raw BGR pixels with their shape, or the reason the file failed."""
    import pyarrow as pa

    pixels: list[bytes | None] = []
    heights: list[int | None] = []
    widths: list[int | None] = []
    errors: list[str | None] = []
    for path in batch.column("path").to_pylist():
        image, error = decode(path)
        pixels.append(None if image is None else image.tobytes())
        heights.append(None if image is None else image.shape[0])
        widths.append(None if image is None else image.shape[1])
        errors.append(error)
    return (
        batch.append_column("pixels", pa.array(pixels, pa.large_binary()))
        .append_column("image_height", pa.array(heights, pa.int32()))
        .append_column("image_width", pa.array(widths, pa.int32()))
        .append_column("decode_error", pa.array(errors, pa.string()))
    )


class _DetectActor:
    """One detector per actor; decoded batch in, rows of the batch schema (plus shard, position) out."""

    def __init__(self, config: BatchConfig, base: Path) -> None:
        from retinakit.detector import Detector

        self.config = config
        self.base = base
        self.detector = Detector(config.detector)

    def __call__(self, batch: pa.Table) -> pa.Table:
        import pyarrow as pa

        from retinakit.io.batching import same_shape_batches

        items = [self._item(row) for row in batch.to_pylist()]
        rows: list[dict[str, Any]] = []
        for run in same_shape_batches(items, lambda item: item.image, self.config.detector.batch_size):
            for item, (row, faces) in zip(run, detect_items(self.detector, run), strict=True):
                if item.image is not None and faces is not None and (self.config.crops or self.config.save_images):
                    write_image_outputs(self.config, self.base, item.path, item.image, faces)
                rows.append({"shard": item.shard, "position": item.position, **row})
        schema = arrow_schema().insert(0, pa.field("position", pa.int64())).insert(0, pa.field("shard", pa.int64()))
        return pa.Table.from_pylist(rows, schema=schema)

    @staticmethod
    def _item(row: dict[str, Any]) -> Item:
        image = None
        if row["pixels"] is not None:
            image = np.frombuffer(row["pixels"], np.uint8).reshape(row["image_height"], row["image_width"], 3)
        return Item(row["shard"], 0, row["position"], row["path"], image, row["decode_error"])
