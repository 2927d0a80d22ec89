import numpy as np

from retinakit.io.batching import prefetch, same_shape_batches


def test_same_shape_batches_split_on_shape_size_and_missing_images():
    a, b = np.zeros((2, 3)), np.zeros((4, 3))
    items = [("1", a), ("2", a), ("3", a), ("4", b), ("x", None), ("5", b), ("6", b)]
    runs = same_shape_batches(items, lambda item: item[1], max_size=2)
    assert [[name for name, _ in run] for run in runs] == [["1", "2"], ["3"], ["4"], ["x"], ["5", "6"]]
    assert list(same_shape_batches([], lambda item: item, max_size=4)) == []


def test_prefetch_keeps_order_and_hands_back_errors():
    def square(x: int) -> int:
        if x == 3:
            raise ValueError("three")
        return x * x

    out = list(prefetch(square, range(6), depth=2))
    assert [i for i, _ in out] == list(range(6))
    assert [r for _, r in out if not isinstance(r, Exception)] == [0, 1, 4, 16, 25]
    assert isinstance(out[3][1], ValueError)
