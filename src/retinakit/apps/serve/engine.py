"""Running the detector for concurrent requests without blocking the event loop.

Two engines with one interface, chosen by :attr:`ServeConfig.engine`; both detect through
:meth:`Detector.stream <retinakit.detector.Detector.stream>` (so a failed pass is retried image by image
and only the image that fails alone gets an error, as in every other app):

- :class:`PoolEngine`: each request is decoded and detected on its own in a pool of ``workers`` threads.
- :class:`BatchEngine` (micro-batching): requests wait up to a short window so that images arriving
  together go through the model in one forward pass (grouped by detector and ordered by image size, so
  no padding is added); ``workers`` threads run the windows.

Decoding happens in the same worker threads as inference, so at most ``workers`` threads keep the CPU
busy and the queue holds compressed uploads, not decoded images. Both engines admit at most
``max_queue`` requests at once (:meth:`Engine.admit` raises :class:`Overloaded` past that) and hold a
:class:`PixelBudget` of network-input pixels while they run; the event loop only waits on futures. A job
whose request was abandoned (its client left, or it timed out) is not decoded nor run.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from retinakit.detector import Detector, Outcome

#: Turns an upload into a BGR uint8 image; raises for data that cannot be decoded.
Decoder = Callable[[bytes], np.ndarray]


class Overloaded(RuntimeError):
    """More requests than the queue admits: the client should retry later (HTTP 503)."""


class Abandoned(RuntimeError):
    """The job's request was given up before it ran: it is skipped."""


@dataclass(eq=False)
class Job:
    """One request's upload, the detector for its options, and what its header says it will cost."""

    data: bytes
    detector: Detector
    shape: tuple[int, int] = (0, 0)  # (height, width) from the file header: orders a micro-batch
    cost: int = 0  # network-input pixels of its largest forward pass
    abandoned: threading.Event = field(default_factory=threading.Event, repr=False)


class PixelBudget:
    """At most ``limit`` network-input pixels in forward passes at once (worker threads wait for room)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._room = threading.Condition()

    @contextlib.contextmanager
    def hold(self, pixels: int) -> Iterator[None]:
        pixels = min(pixels, self.limit)  # a larger job was refused before; a window may sum past it
        with self._room:
            self._room.wait_for(lambda: self.used + pixels <= self.limit)
            self.used += pixels
        try:
            yield
        finally:
            with self._room:
                self.used -= pixels
                self._room.notify_all()


class Engine:
    """Admission control and the worker threads shared by both engines; subclasses implement :meth:`detect`."""

    def __init__(self, max_queue: int, workers: int, decode: Decoder, budget: PixelBudget | None = None) -> None:
        self.max_queue = max_queue
        self.workers = workers
        self.decode = decode
        self.budget = budget or PixelBudget(2**62)
        self.depth = 0  # admitted requests: queued or running
        self.running = 0  # requests in a worker thread (decoding or in a forward pass)
        self._lock = threading.Lock()
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

    async def detect(self, job: Job) -> Outcome[Job]:
        """The job's outcome (decoded image and faces, or its error), computed off the event loop.

        Cancelling the await abandons the job: it is skipped if it has not started."""
        raise NotImplementedError

    def read(self, job: Job) -> np.ndarray:
        """The decoded upload (``Detector.stream``'s reader); an abandoned job is not decoded."""
        if job.abandoned.is_set():
            raise Abandoned("the request was abandoned")
        return self.decode(job.data)

    def run(self, jobs: list[Job], pixels: int) -> list[Outcome[Job]]:
        """Outcomes of ``jobs`` (one detector) through ``Detector.stream``, holding ``pixels`` of the budget."""
        with self._lock:
            self.running += len(jobs)
        try:
            with self.budget.hold(pixels):
                return list(jobs[0].detector.stream(jobs, read=self.read, readahead=0))
        finally:
            with self._lock:
                self.running -= len(jobs)


class PoolEngine(Engine):
    """One request per forward pass, ``workers`` at a time."""

    async def detect(self, job: Job) -> Outcome[Job]:
        loop = asyncio.get_running_loop()
        try:
            (outcome,) = await loop.run_in_executor(self.executor, self._run_one, job)
        except asyncio.CancelledError:
            job.abandoned.set()  # a job still in the executor's queue is cancelled with the future
            raise
        return outcome

    def _run_one(self, job: Job) -> list[Outcome[Job]]:
        if job.abandoned.is_set():
            return [Outcome(job, error=Abandoned("the request was abandoned"))]
        return self.run([job], job.cost)


@dataclass(eq=False)
class _Queued:
    job: Job
    future: asyncio.Future[Outcome[Job]] = field(repr=False)


class BatchEngine(Engine):
    """Micro-batching: up to ``max_batch`` images per forward pass, collected for at most ``window`` seconds.

    The window is only waited for while more admitted requests are on their way to the queue; a lone
    request goes straight through. ``batch_pixels`` is the detectors' own bound on a pass's pixels (for the
    budget held by a window).
    """

    def __init__(
        self,
        max_queue: int,
        workers: int,
        decode: Decoder,
        max_batch: int,
        window: float,
        budget: PixelBudget | None = None,
    ) -> None:
        super().__init__(max_queue, workers, decode, budget)
        self.max_batch = max_batch
        self.window = window
        self.queue: asyncio.Queue[_Queued] = asyncio.Queue()
        self.tasks: list[asyncio.Task[None]] = []
        self.handed = 0  # jobs taken from the queue by a collector

    async def start(self) -> None:
        self.tasks = [asyncio.create_task(self._collect()) for _ in range(self.workers)]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await super().stop()

    async def detect(self, job: Job) -> Outcome[Job]:
        future: asyncio.Future[Outcome[Job]] = asyncio.get_running_loop().create_future()
        self.queue.put_nowait(_Queued(job, future))
        try:
            return await future
        except asyncio.CancelledError:
            job.abandoned.set()
            raise

    async def _window(self) -> list[_Queued]:
        """The next requests to run together: the first in the queue and those that come within the window."""
        loop = asyncio.get_running_loop()
        items = [await self.queue.get()]
        deadline = loop.time() + self.window
        while len(items) < self.max_batch:
            if not self.queue.empty():
                items.append(self.queue.get_nowait())
                continue
            # wait only for requests already admitted that have not reached the queue yet
            coming = self.depth - self.handed - len(items)
            remaining = deadline - loop.time()
            if coming <= 0 or remaining <= 0:
                break
            await asyncio.sleep(min(remaining, 0.001))  # polling: no job can be lost to a cancelled get()
        return [item for item in items if not item.future.done()]  # abandoned while queued

    async def _collect(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            items = await self._window()
            if not items:
                continue
            self.handed += len(items)
            try:
                outcomes = await loop.run_in_executor(self.executor, self._run_window, [i.job for i in items])
            finally:
                self.handed -= len(items)
            for item, outcome in zip(items, outcomes, strict=True):
                if not item.future.done():
                    item.future.set_result(outcome)

    def _run_window(self, jobs: list[Job]) -> list[Outcome[Job]]:
        """Each detector's jobs in one stream, ordered by image size so same-size images share a pass."""
        found: dict[int, Outcome[Job]] = {}
        groups: dict[int, list[Job]] = {}
        for job in jobs:
            groups.setdefault(id(job.detector), []).append(job)
        for group in groups.values():
            group.sort(key=lambda job: job.shape)
            batch_pixels = group[0].detector.config.batch_pixels
            pixels = min(sum(j.cost for j in group), max(max(j.cost for j in group), batch_pixels))
            for outcome in self.run(group, pixels):
                found[id(outcome.item)] = outcome
        return [found[id(job)] for job in jobs]


def make_engine(
    kind: str,
    max_queue: int,
    workers: int,
    decode: Decoder,
    max_batch: int,
    window: float,
    budget: PixelBudget | None = None,
) -> Engine:
    """The engine named by :attr:`ServeConfig.engine`."""
    if kind == "pool":
        return PoolEngine(max_queue, workers, decode, budget)
    return BatchEngine(max_queue, workers, decode, max_batch, window, budget)
