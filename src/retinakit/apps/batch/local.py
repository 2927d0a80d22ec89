"""The local engine: worker processes decode, this process detects in same-shape batches, shards are written in order.

Memory is bounded whatever the collection size: the listing streams (one shard of paths at a time),
at most ``depth`` decoded images are in flight, and only the current shard's rows are held.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import cv2
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
from retinakit.apps.batch.schema import Row
from retinakit.apps.batch.shards import Hook, ShardRecord, ShardStore
from retinakit.detector import Detector
from retinakit.io.readahead import same_shape_batches

Decoded = tuple[np.ndarray | None, str | None]


def run_local(
    config: BatchConfig,
    store: ShardStore,
    shards: Iterable[tuple[int, list[str]]],
    base: Path,
    on_shard: Callable[[ShardRecord], None],
    hook: Hook,
) -> BatchReport:
    """Process the pending ``shards`` into ``store``; returns what was done (skipped shards counted by the caller)."""
    start = time.perf_counter()
    usage_start = _cpu_seconds()
    detector = Detector(config.detector)
    workers = (os.cpu_count() or 1) if config.workers is None else config.workers
    depth = 2 * max(workers, 1) + config.detector.batch_size
    images = errors = written = 0
    pending: dict[int, list[Row]] = {}
    with ThreadPoolExecutor(max_workers=2) as writer:
        outputs: dict[int, list[Future[None]]] = {}
        stream = _decoded(shards, workers, depth)
        for run in same_shape_batches(stream, lambda item: item.image, config.detector.batch_size):
            for item, (row, faces) in zip(run, detect_items(detector, run), strict=True):
                hook("row", item.shard * config.shard_size + item.position)
                rows = pending.setdefault(item.shard, [])
                rows.append(row)
                if item.image is not None and faces is not None and (config.crops or config.save_images):
                    outputs.setdefault(item.shard, []).append(
                        writer.submit(write_image_outputs, config, base, item.path, item.image, faces)
                    )
                if len(rows) == item.size:
                    for fut in outputs.pop(item.shard, []):
                        fut.result()  # an output that cannot be written stops the job (resumable)
                    record = store.write(item.shard, pending.pop(item.shard))
                    images, errors, written = images + record.rows, errors + record.errors, written + 1
                    on_shard(record)
    return BatchReport(images, errors, written, 0, time.perf_counter() - start, _cpu_seconds() - usage_start)


def _decoded(shards: Iterable[tuple[int, list[str]]], workers: int, depth: int) -> Iterator[Item]:
    """Every input of ``shards`` decoded, in order; ``workers`` processes with at most ``depth`` in flight."""
    inputs = ((k, len(paths), i, path) for k, paths in shards for i, path in enumerate(paths))
    if workers == 0:
        for k, size, i, path in inputs:
            yield Item(k, size, i, path, *decode(path))
        return
    context = multiprocessing.get_context("spawn")  # never fork a process that holds inference threads
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker) as pool:
        queue: deque[tuple[tuple[int, int, int, str], Future[Decoded]]] = deque()
        for key in inputs:
            queue.append((key, pool.submit(decode, key[3])))
            if len(queue) >= depth:
                yield _finish(*queue.popleft())
        while queue:
            yield _finish(*queue.popleft())


def _finish(key: tuple[int, int, int, str], future: Future[Decoded]) -> Item:
    try:
        image, error = future.result()
    except BrokenProcessPool as exc:  # every later input would fail too: stop, a rerun resumes
        raise BatchError(f"a decoding process died near {key[3]}; rerun the same command to resume") from exc
    except Exception as exc:  # e.g. a result that could not be sent back
        image, error = None, f"decoding failed: {exc}"
    return Item(*key, image, error)


def _init_worker() -> None:
    cv2.setNumThreads(1)


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
