"""Face detection over collections of any size: resumable, exactly-once batch jobs into Parquet shards.

>>> from retinakit.apps.batch import BatchConfig, run_batch
>>> report = run_batch(BatchConfig("photos/", "faces/"))     # rerun the same call after a crash to resume

Engines: ``local`` (worker processes decode, batched inference, nothing to install) and ``ray``
(decoding tasks and detector actors sized to the cluster; ``pip install 'retinakit[ray]'``). Both detect
through :meth:`~retinakit.Detector.stream` and write the same shards (see :mod:`.shards`) with the same
schema (see :mod:`.schema`) and the same detections.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator

from retinakit.apps.batch.job import BatchConfig, BatchReport
from retinakit.apps.batch.schema import arrow_schema
from retinakit.apps.batch.shards import Hook, ShardRecord, ShardStore, iter_shards, no_hook
from retinakit.apps.batch.source import Source, iter_paths

__all__ = ["BatchConfig", "BatchReport", "ShardRecord", "arrow_schema", "run_batch"]


def run_batch(
    config: BatchConfig, on_shard: Callable[[ShardRecord], None] | None = None, hook: Hook = no_hook
) -> BatchReport:
    """Run (or resume) the job ``config`` describes; ``on_shard`` is called after each shard is recorded.

    Bad inputs become rows with an error. Raises ValueError for a SOURCE that is not a directory, glob
    or listing, or an OUTPUT that holds a job with other settings; ImportError for ``engine="ray"``
    without Ray; :class:`~retinakit.apps.batch.job.BatchError` for a Ray job that cannot run on its
    cluster, lost work for good or stalled (rerun to resume).
    """
    source = Source(config.source, config.root)
    base = source.base
    store = ShardStore(config.output, config.job_settings(), hook)
    skipped = [0]

    def pending(shards: Iterable[tuple[int, list[str]]]) -> Iterator[tuple[int, list[str]]]:
        for index, paths in shards:
            if index in store.done:
                skipped[0] += 1
            yield index, paths

    shards = store.pending(pending(iter_shards(iter_paths(source), config.shard_size)))
    callback = on_shard or (lambda record: None)
    if config.engine == "ray":
        from retinakit.apps.batch.ray_engine import run_ray

        report = run_ray(config, store, shards, base, callback, hook)
    else:
        from retinakit.apps.batch.local import run_local

        report = run_local(config, store, shards, base, callback, hook)
    return dataclasses.replace(
        report,
        shards_skipped=skipped[0],
        total_images=sum(r.rows for r in store.done.values()),
        total_errors=sum(r.errors for r in store.done.values()),
    )
