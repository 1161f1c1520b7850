"""rotated_digits: the bundled digits plus 90°, 180°, 270° rotations as classes 10..39."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits

from adaptd.adapters.tasks import rotated_digits


def test_forty_classes_with_rotated_copies() -> None:
    x, y = rotated_digits()
    digits = load_digits()
    n = len(digits.target)
    assert x.shape == (4 * n, 64) and x.dtype == np.float32 and y.dtype == np.int64
    assert np.array_equal(np.unique(y), np.arange(40))
    assert x.min() == 0.0 and x.max() == 1.0
    originals = digits.images / 16.0
    for k in range(4):
        block = slice(k * n, (k + 1) * n)
        assert np.array_equal(y[block], digits.target + 10 * k)
        for i in (0, 1, 500, n - 1):
            expected = np.rot90(originals[i], k)
            assert np.allclose(x[block][i].reshape(8, 8), expected)
    # A rotation really moves pixels: a 90° copy is not the original image.
    assert not np.allclose(x[n], x[0])
