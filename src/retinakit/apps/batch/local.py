"""The local engine: worker processes decode, this process detects (:meth:`Detector.stream`), shards in order.

Memory is bounded whatever the collection size: the listing streams (one shard of paths at a time),
at most ``depth`` decoded images are in flight, and only the current shard's rows are held
(``benchmarks/batch_memory.py`` shows each process's memory level off after the first shard).
A decoding process that dies is replaced and the job goes on (see :class:`_Decoders`).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import resource
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import cv2
import numpy as np

from retinakit.apps.batch.job import (
    BatchConfig,
    BatchReport,
    Item,
    decode,
    detect_rows,
    write_image_outputs,
)
from retinakit.apps.batch.schema import Row
from retinakit.apps.batch.shards import Hook, ShardRecord, ShardStore
from retinakit.detector import Detector

logger = logging.getLogger(__name__)

Decoded = tuple[np.ndarray | None, str | None]
Key = tuple[int, int, int, str]  # shard, shard size, position in the shard, path

#: The error of an image that killed its decoding process twice, each time with nothing else in flight.
DIED = "decoder process died (e.g. killed for lack of memory)"


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
        for item, row, faces in detect_rows(detector, _decoded(shards, workers, depth)):
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
    decoders = _Decoders(workers)
    try:
        queue: deque[tuple[Key, Future[Decoded]]] = deque()
        for key in inputs:
            queue.append((key, decoders.submit(key[3])))
            if len(queue) >= depth:
                yield decoders.finish(queue)
        while queue:
            yield decoders.finish(queue)
    finally:
        decoders.close()


class _Decoders:
    """A pool of decoding processes that survives one of them dying (e.g. killed by the out-of-memory killer).

    A dying process breaks the whole pool and fails every image in flight; which one killed it is not
    known (some had not even started). So a fresh pool is started and each of those images is decoded
    again alone in it, where a death can only be its own: an innocent image now decodes; one that
    kills its lone decoder twice becomes an error row (:data:`DIED`). The job goes on either way.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        context = multiprocessing.get_context("spawn")  # never fork a process that holds inference threads
        return ProcessPoolExecutor(self.workers, mp_context=context, initializer=_init_worker)

    def _restart(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.pool = self._start()

    def submit(self, path: str) -> Future[Decoded]:
        try:
            return self.pool.submit(decode, path)
        except BrokenProcessPool as exc:  # broke since the last submit: recovered when the queue gets here
            return _failed(exc)

    def finish(self, queue: deque[tuple[Key, Future[Decoded]]]) -> Item:
        """The item at the head of ``queue``; if the pool broke, every image in flight is retried first."""
        if _died(queue[0][1]):
            wait([future for _, future in queue])  # a broken pool fails all its pending futures at once
            self._restart()
            lost = sum(_died(future) for _, future in queue)
            logger.warning("a decoding process died; decoding its %d images in flight again, one at a time", lost)
            for i, (key, future) in enumerate(queue):
                if _died(future):
                    queue[i] = (key, self._alone(key[3]))
        key, future = queue.popleft()
        try:
            image, error = future.result()
        except Exception as exc:  # e.g. a result that could not be sent back
            image, error = None, f"decoding failed: {exc}"
        return Item(*key, image, error)

    def _alone(self, path: str) -> Future[Decoded]:
        """``path`` decoded with nothing else in flight, so that a death now is its own; two are an error row."""
        for _ in range(2):
            future = self.submit(path)
            if not _died(future):
                return future
            self._restart()
        logger.warning("%s killed its decoding process twice: an error row", path)
        done: Future[Decoded] = Future()
        done.set_result((None, DIED))
        return done

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def _died(future: Future[Decoded]) -> bool:
    """Waits for ``future``; True if its decoding process died (the pool broke)."""
    return isinstance(future.exception(), BrokenProcessPool)


def _failed(exc: BaseException) -> Future[Decoded]:
    future: Future[Decoded] = Future()
    future.set_exception(exc)
    return future


def _init_worker() -> None:
    cv2.setNumThreads(1)


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
