"""Running the detector for concurrent requests without blocking the event loop.

Two engines with one interface, chosen by :attr:`ServeConfig.engine`:

- :class:`BatchEngine` (micro-batching): requests wait up to a short window so that images arriving
  together go through the model in one forward pass (grouped by detector and image shape, so no
  padding is added); ``workers`` threads run the batches.
- :class:`PoolEngine`: each request runs on its own in a pool of ``workers`` threads.

Both admit at most ``max_queue`` requests at once (:meth:`Engine.admit` raises :class:`Overloaded`
past that) and run inference only in their threads: the event loop only waits on futures.
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


class Overloaded(RuntimeError):
    """More requests than the queue admits: the client should retry later (HTTP 503)."""


class Engine:
    """Admission control shared by both engines; subclasses implement :meth:`detect`."""

    def __init__(self, max_queue: int, workers: int, on_batch: BatchObserver | None = None) -> None:
        self.max_queue = max_queue
        self.depth = 0  # admitted requests: decoding, queued or running
        self.in_flight = 0  # images in a running forward pass
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

    async def detect(self, image: np.ndarray, detector: Detector) -> Faces:
        """Faces in one BGR image, computed off the event loop."""
        raise NotImplementedError

    def _run(self, detector: Detector, images: list[np.ndarray]) -> list[Faces]:
        return detector.detect_bgr(images)


class PoolEngine(Engine):
    """One forward pass per request, ``workers`` at a time."""

    async def detect(self, image: np.ndarray, detector: Detector) -> Faces:
        loop = asyncio.get_running_loop()
        self.in_flight += 1
        try:
            faces = await loop.run_in_executor(self.executor, self._run, detector, [image])
        finally:
            self.in_flight -= 1
        self.on_batch(1)
        return faces[0]


@dataclass
class _Job:
    image: np.ndarray
    detector: Detector
    future: asyncio.Future[Faces] = field(repr=False)


class BatchEngine(Engine):
    """Micro-batching: up to ``max_batch`` images per forward pass, collected for at most ``window`` seconds.

    The window is only waited for while more admitted requests are on their way (still decoding);
    a lone request goes straight through.
    """

    def __init__(
        self, max_queue: int, workers: int, max_batch: int, window: float, on_batch: BatchObserver | None = None
    ) -> None:
        super().__init__(max_queue, workers, on_batch)
        self.max_batch = max_batch
        self.window = window
        self.queue: asyncio.Queue[_Job] = asyncio.Queue()
        self.tasks: list[asyncio.Task[None]] = []
        self.workers = workers

    async def start(self) -> None:
        self.tasks = [asyncio.create_task(self._collect()) for _ in range(self.workers)]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await super().stop()

    async def detect(self, image: np.ndarray, detector: Detector) -> Faces:
        future: asyncio.Future[Faces] = asyncio.get_running_loop().create_future()
        self.queue.put_nowait(_Job(image, detector, future))
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
            if jobs:
                await self._run_jobs(loop, jobs)

    async def _run_jobs(self, loop: asyncio.AbstractEventLoop, jobs: list[_Job]) -> None:
        groups: dict[tuple[int, tuple[int, ...]], list[_Job]] = {}
        for job in jobs:
            groups.setdefault((id(job.detector), job.image.shape), []).append(job)
        self.in_flight += len(jobs)
        try:
            for group in groups.values():
                images = [job.image for job in group]
                try:
                    results = await loop.run_in_executor(self.executor, self._run, group[0].detector, images)
                except Exception as exc:
                    for job in group:
                        if not job.future.done():
                            job.future.set_exception(exc)
                    continue
                self.on_batch(len(group))
                for job, faces in zip(group, results, strict=True):
                    if not job.future.done():
                        job.future.set_result(faces)
        finally:
            self.in_flight -= len(jobs)


def make_engine(
    kind: str, max_queue: int, workers: int, max_batch: int, window: float, on_batch: BatchObserver | None = None
) -> Engine:
    """The engine named by :attr:`ServeConfig.engine`."""
    if kind == "pool":
        return PoolEngine(max_queue, workers, on_batch)
    return BatchEngine(max_queue, workers, max_batch, window, on_batch)
