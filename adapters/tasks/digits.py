"""scikit-learn's bundled 8x8 digits with rotated copies as new classes: 40 classes, no download.

In the Omniglot tradition (Santoro et al., 2016; Vinyals et al., 2016) each rotation by a
multiple of 90° of a class is a new class, which multiplies the number of classes available
for disjoint meta-training and test splits. Class ``c = digit + 10 · k`` holds the images of
``digit`` rotated counter-clockwise by ``k · 90°`` (``numpy.rot90(image, k)``), ``k = 0..3``.
Pixels are scaled from ``0..16`` to ``[0, 1]``. scikit-learn (an optional dependency: the
``bench`` and ``test`` extras) is imported only when the function is called.

Some classes are near-copies of others (a 6 rotated by 180° looks like a 9, a 0 like itself):
that is kept, as it is in rotated Omniglot, and makes the task slightly harder.

Examples
--------
>>> x, y = rotated_digits()
>>> x.shape, x.dtype, y.dtype, len(set(y.tolist()))
((7188, 64), dtype('float32'), dtype('int64'), 40)
>>> float(x.min()), float(x.max())
(0.0, 1.0)

References
----------
Santoro, A. et al. (2016). Meta-learning with memory-augmented neural networks. ICML.
Vinyals, O. et al. (2016). Matching networks for one shot learning. NeurIPS.
"""

from __future__ import annotations

import numpy as np

__all__ = ["N_CLASSES", "rotated_digits"]

N_CLASSES = 40
"""Ten digits times four rotations."""


def rotated_digits() -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)``: x float32 ``(4 · 1797, 64)`` in ``[0, 1]``, y int64 class ids ``0..39``.

    Rows come in blocks of rotation ``k = 0, 1, 2, 3``; within a block, in the order of
    ``sklearn.datasets.load_digits``. Image row ``i`` of block ``k`` is
    ``np.rot90(image_i, k).ravel()``.
    """
    from sklearn.datasets import load_digits  # optional dependency, bundled data file

    digits = load_digits()
    images = digits.images.astype(np.float32) / 16.0
    labels = digits.target.astype(np.int64)
    xs = [np.rot90(images, k, axes=(1, 2)).reshape(len(images), -1) for k in range(4)]
    ys = [labels + 10 * k for k in range(4)]
    return np.ascontiguousarray(np.concatenate(xs)), np.concatenate(ys)
