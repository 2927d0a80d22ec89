"""Small I/O helpers: bounded read-ahead of images in a background thread; progress callbacks."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: A progress callback: wraps an iterable of ``total`` items (the CLI passes a tqdm bar).
Progress = Callable[[Iterable[Any], int], Iterator[Any]]


def no_progress(items: Iterable[Any], total: int) -> Iterator[Any]:
    """The silent :data:`Progress` used by library functions unless told otherwise."""
    return iter(items)


def prefetch(fn: Callable[[T], R], items: Iterable[T], depth: int = 4) -> Iterator[tuple[T, R | BaseException]]:
    """Yield ``(item, fn(item))`` in order, computing up to ``depth`` ahead in one worker thread.

    An exception raised by ``fn`` is yielded in place of the result, so one bad item never stops
    the others (image decoding releases the GIL, so reading overlaps inference).
    """

    def safe(item: T) -> R | BaseException:
        try:
            return fn(item)
        except Exception as exc:
            return exc

    queue: deque[tuple[T, Future[R | BaseException]]] = deque()
    with ThreadPoolExecutor(max_workers=1) as pool:
        for item in items:
            queue.append((item, pool.submit(safe, item)))
            if len(queue) > depth:
                head, fut = queue.popleft()
                yield head, fut.result()
        while queue:
            head, fut = queue.popleft()
            yield head, fut.result()


def same_shape_batches(
    items: Iterable[T],
    image_of: Callable[[T], Any],
    max_size: int,
    max_pixels: int | None = None,
    pixels_of: Callable[[Any], int] | None = None,
) -> Iterator[list[T]]:
    """Runs of consecutive items whose images share one shape, in order.

    So that one forward pass serves several images without padding. A run holds at most
    ``max_size`` items and, with ``max_pixels``, at most that many pixels in all (``pixels_of(image)``,
    default height x width; a larger single image forms a run of its own), which bounds memory.
    An item for which ``image_of`` returns None (e.g. a file that failed to read) forms a run of its own.
    """
    run: list[T] = []
    shape = None
    pixels = 0
    for item in items:
        image = image_of(item)
        size = 0
        if image is not None and max_pixels is not None:
            size = pixels_of(image) if pixels_of is not None else image.shape[0] * image.shape[1]
        if run and (
            image is None
            or image.shape != shape
            or len(run) >= max_size
            or (max_pixels is not None and pixels + size > max_pixels)
        ):
            yield run
            run = []
            pixels = 0
        if image is None:
            yield [item]
            continue
        run.append(item)
        shape = image.shape
        pixels += size
    if run:
        yield run
