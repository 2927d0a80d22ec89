"""Running the detector for concurrent requests without blocking the event loop.

Two engines with one interface, chosen by :attr:`ServeConfig.engine`:

- :class:`PoolEngine`: each request is decoded and detected on its own in a pool of ``workers`` threads.
- :class:`BatchEngine` (micro-batching): requests wait up to a short window so that images arriving
  together go through the model in one forward pass (grouped by detector and image size, so no
  padding is added); ``workers`` threads run the batches.

Decoding happens in the same worker threads as inference, so at most ``workers`` threads keep the CPU
busy and the queue holds compressed uploads, not decoded images. Both engines admit at most
``max_queue`` requests at once (:meth:`Engine.admit` raises :class:`Overloaded` past that); the event
loop only waits on futures.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from retinakit.detector import Detector
from retinakit.result import Faces

#: Called on the event loop after each forward pass with the number of images in it.
BatchObserver = Callable[[int], None]
#: Turns an upload into a BGR uint8 image; raises for data that cannot be decoded.
Decoder = Callable[[bytes], np.ndarray]
Result = tuple[np.ndarray, Faces]  # the decoded image and its faces


class Overloaded(RuntimeError):
    """More requests than the queue admits: the client should retry later (HTTP 503)."""


class Engine:
    """Admission control shared by both engines; subclasses implement :meth:`detect`."""

    def __init__(self, max_queue: int, workers: int, decode: Decoder, on_batch: BatchObserver | None = None) -> None:
        self.max_queue = max_queue
        self.workers = workers
        self.decode = decode
        self.depth = 0  # admitted requests: uploading, queued or running
        self.in_flight = 0  # requests in a worker thread (decoding or in a forward pass)
        self.on_batch = on_batch or (lambda n: None)
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="retinakit-infer")

    @contextlib.contextmanager
    def admit(self) -> Iterator[None]:
        """Hold one place in the queue for the duration of a request; :class:`Overloaded` when full."""
        if self.depth >= self.max_queue:
            raise Overloaded(f"{self.depth} requests are queued (the limit is {self.max_queue})")
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1

    async def start(self) -> None:
        """Start background tasks (called from the app's lifespan, on the event loop)."""

    async def stop(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def detect(self, data: bytes, detector: Detector) -> Result:
        """The decoded upload and its faces, computed off the event loop."""
        raise NotImplementedError


class PoolEngine(Engine):
    """One request per forward pass, ``workers`` at a time."""

    async def detect(self, data: bytes, detector: Detector) -> Result:
        loop = asyncio.get_running_loop()
        self.in_flight += 1
        try:
            result = await loop.run_in_executor(self.executor, self._run, data, detector)
        finally:
            self.in_flight -= 1
        self.on_batch(1)
        return result

    def _run(self, data: bytes, detector: Detector) -> Result:
        image = self.decode(data)
        return image, detector.detect_bgr([image])[0]


@dataclass
class _Job:
    data: bytes
    detector: Detector
    future: asyncio.Future[Result] = field(repr=False)


class BatchEngine(Engine):
    """Micro-batching: up to ``max_batch`` images per forward pass, collected for at most ``window`` seconds.

    The window is only waited for while more admitted requests are on their way (still uploading);
    a lone request goes straight through.
    """

    def __init__(
        self,
        max_queue: int,
        workers: int,
        decode: Decoder,
        max_batch: int,
        window: float,
        on_batch: BatchObserver | None = None,
    ) -> None:
        super().__init__(max_queue, workers, decode, on_batch)
        self.max_batch = max_batch
        self.window = window
        self.queue: asyncio.Queue[_Job] = asyncio.Queue()
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self.tasks = [asyncio.create_task(self._collect()) for _ in range(self.workers)]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await super().stop()

    async def detect(self, data: bytes, detector: Detector) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self.queue.put_nowait(_Job(data, detector, future))
        return await future

    async def _collect(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = [await self.queue.get()]
            deadline = loop.time() + self.window
            while len(jobs) < self.max_batch:
                if not self.queue.empty():
                    jobs.append(self.queue.get_nowait())
                    continue
                # wait only for requests already admitted that have not reached the queue yet
                coming = self.depth - self.in_flight - len(jobs)
                remaining = deadline - loop.time()
                if coming <= 0 or remaining <= 0:
                    break
                await asyncio.sleep(min(remaining, 0.001))  # polling: no job can be lost to a cancelled get()
            jobs = [job for job in jobs if not job.future.done()]  # timed out while queued
            if not jobs:
                continue
            self.in_flight += len(jobs)
            try:
                results, batches = await loop.run_in_executor(self.executor, self._run, jobs)
            finally:
                self.in_flight -= len(jobs)
            for size in batches:
                self.on_batch(size)
            for job, result in zip(jobs, results, strict=True):
                if job.future.done():
                    continue
                if isinstance(result, BaseException):
                    job.future.set_exception(result)
                else:
                    job.future.set_result(result)

    def _run(self, jobs: list[_Job]) -> tuple[list[Result | BaseException], list[int]]:
        """Decode every job, then one forward pass per (detector, image size) group; errors stay per job."""
        results: list[Result | BaseException] = [RuntimeError("not run")] * len(jobs)  # every entry is replaced
        decoded: dict[int, np.ndarray] = {}
        groups: dict[tuple[int, tuple[int, ...]], list[int]] = {}
        for i, job in enumerate(jobs):
            try:
                decoded[i] = self.decode(job.data)
            except Exception as exc:
                results[i] = exc
                continue
            groups.setdefault((id(job.detector), decoded[i].shape), []).append(i)
        batches = []
        for members in groups.values():
            try:
                faces = jobs[members[0]].detector.detect_bgr([decoded[i] for i in members])
            except Exception as exc:
                for i in members:
                    results[i] = exc
                continue
            batches.append(len(members))
            for i, found in zip(members, faces, strict=True):
                results[i] = (decoded[i], found)
        return results, batches


def make_engine(
    kind: str,
    max_queue: int,
    workers: int,
    decode: Decoder,
    max_batch: int,
    window: float,
    on_batch: BatchObserver | None = None,
) -> Engine:
    """The engine named by :attr:`ServeConfig.engine`."""
    if kind == "pool":
        return PoolEngine(max_queue, workers, decode, on_batch)
    return BatchEngine(max_queue, workers, decode, max_batch, window, on_batch)
