"""Prometheus metrics in the text exposition format (version 0.0.4), written here in a few classes.

Written by hand rather than with ``prometheus_client`` because the service is one process with a few
counters and one histogram, updated only on the event loop thread: this keeps the ``serve`` extra to
FastAPI, uvicorn and python-multipart, and the output is the plain format every scraper reads.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence

#: Request latency buckets in seconds (upper bounds; +Inf is added).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 30.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Labels = tuple[tuple[str, str], ...]


def _labels(labels: Labels, extra: str = "") -> str:
    parts = [f'{k}="{_escape(v)}"' for k, v in labels]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class _Metric:
    kind = ""

    def __init__(self, name: str, help: str) -> None:
        self.name = name
        self.help = help

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]

    def samples(self) -> list[str]:
        raise NotImplementedError


class Counter(_Metric):
    kind = "counter"

    def __init__(self, name: str, help: str) -> None:
        super().__init__(name, help)
        self.values: dict[Labels, float] = {}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        self.values[key] = self.values.get(key, 0.0) + amount

    def get(self, **labels: str) -> float:
        return self.values.get(tuple(sorted(labels.items())), 0.0)

    def samples(self) -> list[str]:
        values = self.values or {(): 0.0}
        return [f"{self.name}{_labels(k)} {_number(v)}" for k, v in sorted(values.items())]


class Gauge(_Metric):
    """A value read when scraped (``read``), e.g. the queue depth."""

    kind = "gauge"

    def __init__(self, name: str, help: str, read: Callable[[], float]) -> None:
        super().__init__(name, help)
        self.read = read

    def samples(self) -> list[str]:
        return [f"{self.name} {_number(self.read())}"]


class Histogram(_Metric):
    kind = "histogram"

    def __init__(self, name: str, help: str, buckets: Sequence[float] = LATENCY_BUCKETS) -> None:
        super().__init__(name, help)
        self.bounds = tuple(sorted(buckets))
        self.series: dict[Labels, tuple[list[int], list[float]]] = {}  # counts per bucket, [sum]

    def observe(self, value: float, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        counts, total = self.series.setdefault(key, ([0] * (len(self.bounds) + 1), [0.0]))
        counts[bisect.bisect_left(self.bounds, value)] += 1
        total[0] += value

    def samples(self) -> list[str]:
        lines = []
        for key, (counts, total) in sorted(self.series.items()):
            cumulative = 0
            for bound, count in zip((*self.bounds, math.inf), counts, strict=True):
                cumulative += count
                le = 'le="' + _number(bound) + '"'
                lines.append(f"{self.name}_bucket{_labels(key, le)} {cumulative}")
            lines.append(f"{self.name}_sum{_labels(key)} {_number(total[0])}")
            lines.append(f"{self.name}_count{_labels(key)} {cumulative}")
        return lines


class Metrics:
    """The service's metrics; :meth:`render` gives the ``/metrics`` text."""

    def __init__(self, queue_depth: Callable[[], float], in_flight: Callable[[], float]) -> None:
        self.requests = Counter("retinakit_requests_total", "HTTP requests by endpoint and status code.")
        self.latency = Histogram("retinakit_request_duration_seconds", "Request latency by endpoint, in seconds.")
        self.faces = Counter("retinakit_faces_detected_total", "Faces returned by /v1/detect and /v1/align.")
        self.images = Counter("retinakit_images_processed_total", "Uploads whose faces were detected.")
        self.batches = Histogram(
            "retinakit_inference_batch_size",
            "Images per forward pass (a TTA scale's pass holds the image and its flip).",
            buckets=(1, 2, 4, 8, 16, 32),
        )
        self.queue = Gauge("retinakit_queue_depth", "Requests admitted and waiting for or in inference.", queue_depth)
        self.in_flight = Gauge(
            "retinakit_inference_in_flight", "Requests being decoded or detected in a worker thread.", in_flight
        )

    def render(self) -> str:
        metrics: list[_Metric] = [self.requests, self.latency, self.faces, self.images, self.batches]
        metrics += [self.queue, self.in_flight]
        lines: list[str] = []
        for metric in metrics:
            lines += metric.header() + metric.samples()
        return "\n".join(lines) + "\n"
