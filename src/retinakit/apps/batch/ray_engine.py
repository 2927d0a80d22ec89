"""The Ray engine (``engine="ray"``): decoding tasks and a pool of detector actors, same shards as local.

Pipeline: each pending shard is cut into chunks of ``batch_size`` inputs; a chunk is decoded by a Ray
task (``decode_cpus``) and detected by one actor of the pool (one :class:`~retinakit.Detector` per
actor, :meth:`~retinakit.Detector.stream`); the driver keeps a bounded window of chunks in flight,
collects each shard's rows and writes the shard exactly as the local engine does (atomic file, then
the manifest), so both engines resume each other's jobs and give identical files. The images must be
readable from every node (a shared file system).

Correct on any cluster (see :func:`plan_pool`): the pool is sized from the CPUs of the live nodes so
that a decoding task can always run beside it, or the job is refused at once saying what is missing.
A lost node is noticed by the driver, which sizes a new pool for the nodes that are left and redoes
the chunks that were in flight (decoding tasks are also retried by Ray, actors restarted after a
crash). A watchdog ends a job whose chunks stop completing for ``stall_timeout`` seconds with a
:class:`~retinakit.apps.batch.job.BatchError` naming the stage that stalled; written shards are kept
and a rerun resumes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from retinakit.apps.batch.job import (
    BatchConfig,
    BatchError,
    BatchReport,
    Item,
    decode,
    detect_rows,
    write_image_outputs,
)
from retinakit.apps.batch.schema import Row
from retinakit.apps.batch.shards import Hook, ShardRecord, ShardStore

logger = logging.getLogger(__name__)

RAY_EXTRA = "retinakit batch --engine ray needs the 'ray' extra: pip install 'retinakit[ray]'"

#: Attempts per chunk after system failures (a lost worker, actor or object) before the job stops.
CHUNK_ATTEMPTS = 3
#: Seconds between checks of the cluster's live nodes.
NODE_CHECK_S = 1.0


@dataclass(frozen=True)
class PoolPlan:
    """How a job uses a cluster: ``actors`` detectors of ``actor_cpus`` CPUs (``threads`` inference
    threads each) and decoding tasks of ``decode_cpus`` CPUs, for live nodes with ``nodes`` CPUs."""

    actors: int
    actor_cpus: float
    decode_cpus: float
    threads: int
    nodes: tuple[float, ...]

    def describe(self) -> str:
        return (
            f"{self.actors} detector actor(s) x {self.actor_cpus:g} CPU ({self.threads} thread(s)), "
            f"decoding tasks of {self.decode_cpus:g} CPU, on nodes with {', '.join(f'{c:g}' for c in self.nodes)} CPUs"
        )


def plan_pool(node_cpus: Sequence[float], actors: int | None, actor_cpus: int, decode_cpus: float) -> PoolPlan:
    """The pool for live nodes with ``node_cpus`` CPUs, such that the pipeline can always make progress.

    Rule: an actor must fit on one node, and beside the whole pool a decoding task must still fit on
    some node, wherever Ray places the actors. Decoding tasks never ask for more CPU than an actor.
    Default size: the most actors of ``actor_cpus`` that leave that room. If not even one fits beside
    a decoding task (e.g. a 1-CPU cluster), actor and decoding task share the largest node (each asks
    for part of it; the actor keeps ``actor_cpus`` threads). Raises :class:`BatchError` when no node
    has CPUs, an actor is larger than every node, or ``actors`` asks for more than fit.
    """
    nodes = tuple(sorted((c for c in node_cpus if c > 0), reverse=True))
    if not nodes:
        raise BatchError("the Ray cluster has no node with CPUs: start nodes with --num-cpus >= 1")
    biggest = nodes[0]
    if actor_cpus > biggest:
        raise BatchError(
            f"actor_cpus={actor_cpus} but the largest Ray node has {biggest:g} CPUs: lower --actor-cpus or add a node"
        )
    cpus, decode_share = float(actor_cpus), min(decode_cpus, float(actor_cpus))
    fit = _fit(nodes, cpus, decode_share)
    if fit == 0:  # no room beside one actor: share the largest node
        decode_share = min(decode_share, biggest / 2)
        cpus = biggest - decode_share
        fit = _fit(nodes, cpus, decode_share)
    if actors is not None and actors > fit:
        raise BatchError(
            f"{actors} actors of {cpus:g} CPU plus a decoding task of {decode_share:g} CPU do not fit on "
            f"Ray nodes with {', '.join(f'{c:g}' for c in nodes)} CPUs (at most {fit}): lower --actors or add CPUs"
        )
    return PoolPlan(actors or fit, cpus, decode_share, actor_cpus, nodes)


def _fit(nodes: Sequence[float], cpus: float, decode_cpus: float) -> int:
    """Most actors of ``cpus`` on ``nodes`` that always leave ``decode_cpus`` (<= ``cpus``) free on some node."""
    slots = [math.floor(c / cpus + 1e-9) for c in nodes]
    if decode_cpus <= 0 or any(c - s * cpus >= decode_cpus - 1e-9 for c, s in zip(nodes, slots, strict=True)):
        return sum(slots)  # a node's remainder beside its most actors already holds a decoding task
    return max(sum(slots) - 1, 0)  # one free actor slot, on whichever node, holds one


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
    started = not ray.is_initialized()
    if started:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        if config.address is not None:
            ray.init(address=config.address, log_to_driver=False)
        else:
            ray.init(num_cpus=config.num_cpus, include_dashboard=False, log_to_driver=False)
    start = time.perf_counter()  # after start-up: the report's images/s is the engine's, not Ray's start
    pipeline = _Pipeline(ray, config, base)
    try:
        images = errors = written = 0
        sizes: dict[int, int] = {}
        collected: dict[int, dict[int, Row]] = {}
        for chunk, rows in pipeline.run(_chunks(shards, config.detector.batch_size, sizes)):
            got = collected.setdefault(chunk.shard, {})
            got.update(enumerate(rows, chunk.start))
            if len(got) == sizes[chunk.shard]:
                for position in sorted(got):
                    hook("row", chunk.shard * config.shard_size + position)
                record = store.write(chunk.shard, [got[p] for p in sorted(collected.pop(chunk.shard))])
                images, errors, written = images + record.rows, errors + record.errors, written + 1
                on_shard(record)
        if collected:
            raise BatchError(f"Ray returned incomplete shards {sorted(collected)}; rerun to redo them")
        return BatchReport(images, errors, written, 0, time.perf_counter() - start)
    finally:
        pipeline.close()
        if started:
            ray.shutdown()


@dataclass
class _Chunk:
    """Up to ``batch_size`` consecutive inputs of one shard, from position ``start``; its Ray refs when in flight."""

    shard: int
    start: int
    paths: list[str]
    attempts: int = 0
    decoded: Any = None
    actor: int = -1


def _chunks(shards: Iterable[tuple[int, list[str]]], size: int, sizes: dict[int, int]) -> Iterator[_Chunk]:
    """The chunks of ``shards``, recording each shard's input count in ``sizes``."""
    for index, paths in shards:
        sizes[index] = len(paths)
        for start in range(0, len(paths), size):
            yield _Chunk(index, start, paths[start : start + size])


@dataclass
class _Pipeline:
    """The driver's side: a bounded window of chunks over a pool of actors, re-planned when a node is lost."""

    ray: Any
    config: BatchConfig
    base: Path
    plan: PoolPlan | None = None
    actors: list[Any] = field(default_factory=list)
    ready: list[Any] = field(default_factory=list)
    in_flight: dict[Any, _Chunk] = field(default_factory=dict)
    nodes: set[str] = field(default_factory=set)
    decode_task: Any = None
    last_progress: float = 0.0
    last_node_check: float = 0.0

    def run(self, chunks: Iterator[_Chunk]) -> Iterator[tuple[_Chunk, list[Row]]]:
        """``(chunk, its rows in order)`` as chunks complete; raises BatchError on a stall or lasting failure."""
        self._start_pool()
        todo = iter(chunks)
        more = True
        while more or self.in_flight:
            while more and len(self.in_flight) < 2 * len(self.actors) + 2:
                chunk = next(todo, None)
                if chunk is None:
                    more = False
                else:
                    self._submit(chunk)
            if not self.in_flight:
                break
            done, _ = self.ray.wait(list(self.in_flight), num_returns=1, timeout=NODE_CHECK_S)
            for ref in done:
                rows = self._result(ref)
                if rows is not None:
                    self.last_progress = time.monotonic()
                    yield self.in_flight.pop(ref), rows
            self._check_nodes()
            self._check_progress()

    def _start_pool(self, first: bool = True) -> None:
        """Kill the current actors (if any), size a pool for the live nodes, start it."""
        self.close()
        live = [n for n in self.ray.nodes() if n.get("Alive")]
        self.nodes = {n["NodeID"] for n in live}
        c = self.config
        self.plan = plan_pool(
            [n.get("Resources", {}).get("CPU", 0.0) for n in live], c.actors, c.actor_cpus, c.decode_cpus
        )
        logger.info("Ray engine: %s", self.plan.describe())
        free, needed = self.ray.available_resources().get("CPU", 0.0), self.plan.actors * self.plan.actor_cpus
        if first and free + 1e-9 < needed + self.plan.decode_cpus:  # after a loss the old pool is still leaving
            logger.warning(
                "Ray cluster has %g of the %g CPUs this job needs free (other jobs?): it waits for them, at most %g s",
                free,
                needed + self.plan.decode_cpus,
                c.stall_timeout,
            )
        detector = dataclasses.replace(c.detector, threads=self.plan.threads)
        actor_class = self.ray.remote(_DetectActor).options(
            num_cpus=self.plan.actor_cpus, max_restarts=CHUNK_ATTEMPTS, max_task_retries=CHUNK_ATTEMPTS
        )
        self.actors = [
            actor_class.remote(dataclasses.replace(c, detector=detector), self.base) for _ in range(self.plan.actors)
        ]
        self.ready = [actor.ready.remote() for actor in self.actors]
        self.decode_task = self.ray.remote(_decode_chunk).options(
            num_cpus=self.plan.decode_cpus, max_retries=CHUNK_ATTEMPTS
        )
        self.last_progress = self.last_node_check = time.monotonic()

    def _submit(self, chunk: _Chunk) -> None:
        """Decode ``chunk`` in a task and detect it on the least busy actor."""
        chunk.decoded = self.decode_task.remote(chunk.paths)
        load = [0] * len(self.actors)
        for other in self.in_flight.values():
            load[other.actor] += 1
        chunk.actor = load.index(min(load))
        self.in_flight[self.actors[chunk.actor].detect.remote(chunk.shard, chunk.start, chunk.paths, chunk.decoded)] = (
            chunk
        )

    def _result(self, ref: Any) -> list[Row] | None:
        """The rows of a finished chunk; None when a system failure sent the chunk round again."""
        exceptions = self.ray.exceptions
        chunk = self.in_flight[ref]
        try:
            return list(self.ray.get(ref))
        except exceptions.RayTaskError as exc:  # our own code raised (e.g. a crop that cannot be written)
            raise BatchError(f"Ray job stopped at shard {chunk.shard}: {exc.cause}; rerun to resume") from None
        except exceptions.RayError as exc:  # a lost worker, actor, object or node
            del self.in_flight[ref]
            chunk.attempts += 1
            if chunk.attempts >= CHUNK_ATTEMPTS:
                raise BatchError(
                    f"Ray lost shard {chunk.shard} (inputs from {chunk.paths[0]}) {chunk.attempts} times "
                    f"({type(exc).__name__}); shards already written are kept, rerun to resume"
                ) from None
            logger.warning("Ray lost a chunk of shard %d (%s): redoing it", chunk.shard, type(exc).__name__)
            self._submit(chunk)
            return None

    def _check_nodes(self) -> None:
        """If a node was lost, start a pool sized for the nodes that are left and redo the chunks in flight."""
        now = time.monotonic()
        if now - self.last_node_check < NODE_CHECK_S:
            return
        self.last_node_check = now
        alive = {n["NodeID"] for n in self.ray.nodes() if n.get("Alive")}
        lost = self.nodes - alive
        if not lost:
            return
        logger.warning(
            "Ray node(s) %s lost: sizing a new pool for the %d node(s) left, redoing %d chunk(s) in flight",
            ", ".join(sorted(n[:8] for n in lost)),
            len(alive),
            len(self.in_flight),
        )
        redo = list(self.in_flight.values())
        self.in_flight.clear()
        self._start_pool(first=False)
        for chunk in redo:
            self._submit(chunk)

    def _check_progress(self) -> None:
        """The watchdog: no chunk completed for ``stall_timeout`` seconds ends the job, naming the stage."""
        idle = time.monotonic() - self.last_progress
        if idle <= self.config.stall_timeout:
            return
        raise BatchError(
            f"Ray job stalled: no progress for {idle:.0f} s ({self._stalled_stage()}); "
            "shards already written are kept, rerun to resume"
        )

    def _stalled_stage(self) -> str:
        ray, plan = self.ray, self.plan
        assert plan is not None
        started, _ = ray.wait(self.ready, num_returns=len(self.ready), timeout=0, fetch_local=False)
        if not started:
            return (
                f"stage 'detector start-up': none of {plan.actors} actor(s) of {plan.actor_cpus:g} CPU started; "
                "are the cluster's CPUs held by another job?"
            )
        if not self.in_flight:
            return "stage 'listing': no chunk in flight"
        chunk = next(iter(self.in_flight.values()))
        decoded, _ = ray.wait([chunk.decoded], timeout=0, fetch_local=False)
        stage = "detection" if decoded else "decoding"
        return f"stage '{stage}' at shard {chunk.shard}, inputs from {chunk.paths[0]}"

    def close(self) -> None:
        """Kill the pool's actors (their chunks in flight are dropped)."""
        for actor in self.actors:
            with contextlib.suppress(Exception):  # already dead with its node
                self.ray.kill(actor, no_restart=True)
        self.actors, self.ready = [], []


def _decode_chunk(paths: list[str]) -> list[tuple[np.ndarray | None, str | None]]:
    """Each path decoded to BGR pixels, or the reason it failed (never raises)."""
    return [decode(path) for path in paths]


class _DetectActor:
    """One detector per actor: a decoded chunk in, its rows (in order) out; crops written where asked."""

    def __init__(self, config: BatchConfig, base: Path) -> None:
        from retinakit.detector import Detector

        self.config = config
        self.base = base
        self.detector = Detector(config.detector)

    def ready(self) -> bool:
        return True

    def detect(
        self, shard: int, start: int, paths: list[str], decoded: list[tuple[np.ndarray | None, str | None]]
    ) -> list[Row]:
        items = [
            Item(shard, 0, start + i, path, image, error)
            for i, (path, (image, error)) in enumerate(zip(paths, decoded, strict=True))
        ]
        rows: list[Row] = []
        outputs = self.config.crops or self.config.save_images
        for item, row, faces in detect_rows(self.detector, items):
            if outputs and item.image is not None and faces is not None:
                write_image_outputs(self.config, self.base, item.path, item.image, faces)
            rows.append(row)
        return rows
