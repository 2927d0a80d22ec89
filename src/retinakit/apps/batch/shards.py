"""Deterministic shards and the manifest of finished ones: what makes a batch job resumable and exact.

Shard ``k`` holds inputs ``[k * S, (k + 1) * S)`` of the stable listing order (``S`` = shard size) and is
written to ``OUTPUT/part-<k>.parquet``. A shard is done when its file was written whole (to a hidden
temporary file, fsync, ``os.replace``) **and then** recorded in ``OUTPUT/_manifest.jsonl``. After a
kill at any moment a rerun discards temporary files, skips recorded shards and recomputes the others,
overwriting a file that was renamed but not yet recorded: every input ends up in exactly one row.
``OUTPUT/_job.json`` keeps the settings of the job; a rerun with different settings is refused.
Files starting with ``_`` or ``.`` are ignored by Parquet dataset readers, so ``OUTPUT`` reads as one table.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retinakit.apps.batch.schema import ERROR, Row, rows_to_table

MANIFEST = "_manifest.jsonl"
JOB = "_job.json"

#: Fault-injection point for tests: called with an event name and a number (``"row"``: the input's
#: index in the listing, before its row is kept; ``"written"``: the shard index, after its file was
#: renamed into place and before the manifest records it). Raising there simulates a kill.
Hook = Callable[[str, int], None]


def no_hook(event: str, number: int) -> None:
    """The default :data:`Hook`: does nothing."""


def shard_name(index: int) -> str:
    return f"part-{index:06d}.parquet"


def iter_shards(paths: Iterable[str], size: int) -> Iterator[tuple[int, list[str]]]:
    """``(k, paths of shard k)`` for consecutive chunks of ``size`` paths; only one chunk in memory."""
    if size < 1:
        raise ValueError(f"shard size must be >= 1, got {size}")
    chunk: list[str] = []
    index = 0
    for path in paths:
        chunk.append(path)
        if len(chunk) == size:
            yield index, chunk
            index, chunk = index + 1, []
    if chunk:
        yield index, chunk


@dataclass(frozen=True)
class ShardRecord:
    """A manifest line: shard ``index``, its row and error counts, its first input path."""

    index: int
    rows: int
    errors: int
    first: str


class ShardStore:
    """The output directory of one job: its settings, finished shards and atomic shard writes."""

    def __init__(self, output: str | os.PathLike, job: dict[str, Any], hook: Hook = no_hook) -> None:
        self.root = Path(output)
        self.root.mkdir(parents=True, exist_ok=True)
        self.hook = hook
        job_file = self.root / JOB
        if job_file.exists():
            previous = json.loads(job_file.read_text())
            if previous != job:
                changed = sorted(k for k in set(previous) | set(job) if previous.get(k) != job.get(k))
                raise ValueError(
                    f"{self.root} holds a job with other settings ({', '.join(changed)}): "
                    "rerun with the same ones to resume, or use a new output directory"
                )
        else:
            _write_atomic(job_file, json.dumps(job, indent=1, sort_keys=True).encode())
        for stale in self.root.glob(".part-*.tmp"):
            stale.unlink()  # a shard being written when the job was killed
        _drop_torn_tail(self.root / MANIFEST)
        self.done: dict[int, ShardRecord] = {r.index: r for r in read_manifest(self.root / MANIFEST)}

    def pending(self, shards: Iterable[tuple[int, list[str]]]) -> Iterator[tuple[int, list[str]]]:
        """The shards not yet finished; a finished one whose listing changed raises ValueError."""
        for index, paths in shards:
            record = self.done.get(index)
            if record is None:
                yield index, paths
            elif record.first != paths[0] or record.rows != len(paths):
                raise ValueError(
                    f"the input listing changed: shard {index} was {record.rows} inputs from {record.first!r}, "
                    f"now {len(paths)} from {paths[0]!r}; use a new output directory"
                )

    def write(self, index: int, rows: Sequence[Row]) -> ShardRecord:
        """Write shard ``index`` atomically, then record it in the manifest."""
        import pyarrow.parquet as pq

        target = self.root / shard_name(index)
        tmp = self.root / f".{target.name}.tmp"
        with open(tmp, "wb") as f:
            pq.write_table(rows_to_table(rows), f, compression="zstd")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
        self.hook("written", index)
        record = ShardRecord(index, len(rows), sum(r["status"] == ERROR for r in rows), rows[0]["path"])
        with open(self.root / MANIFEST, "a") as f:
            f.write(json.dumps(record.__dict__) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.done[index] = record
        return record


def read_manifest(path: Path) -> Iterator[ShardRecord]:
    """The shards recorded in the manifest ``path`` (none when it does not exist), torn lines skipped."""
    if not path.exists():
        return
    with open(path) as f:
        for line in f:
            try:
                yield ShardRecord(**json.loads(line))
            except (ValueError, TypeError):
                continue  # a line torn by a kill: that shard is simply redone


def _drop_torn_tail(path: Path) -> None:
    """Cut a last line left unfinished by a kill, so the next record starts on a line of its own."""
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(path, "r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
