"""Fashion-MNIST's files: the idx format, and Debian's package that ships them.

Fashion-MNIST (Xiao, Rasul & Vollgraf, 2017) is 70,000 grey 28x28 images of 10 kinds of
clothing, in LeCun's idx format (a magic number giving the element type and the number of
dimensions, the dimensions as big-endian 32-bit integers, then the data), gzip-compressed.
Debian's ``dataset-fashion-mnist`` package installs them in ``/usr/share/datasets/
fashion-mnist``; :func:`ensure_fashion` installs it with ``apt-get`` when the files are
missing and the process runs as root, and says what it did.

Examples
--------
>>> sorted(FASHION_FILES)
['test_x', 'test_y', 'train_x', 'train_y']

References
----------
Xiao, H., Rasul, K. & Vollgraf, R. (2017). Fashion-MNIST: a novel image dataset for
benchmarking machine learning algorithms. arXiv:1708.07747.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

__all__ = [
    "FASHION_DIR",
    "FASHION_FILES",
    "FASHION_PACKAGE",
    "ensure_fashion",
    "read_fashion",
    "read_idx",
]

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_PACKAGE = "dataset-fashion-mnist"
FASHION_FILES = {
    "train_x": "train-images-idx3-ubyte.gz",
    "train_y": "train-labels-idx1-ubyte.gz",
    "test_x": "t10k-images-idx3-ubyte.gz",
    "test_y": "t10k-labels-idx1-ubyte.gz",
}
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path | str) -> np.ndarray:
    """An array from an idx file (LeCun's MNIST format; gzip-compressed when it ends in .gz)."""
    path = Path(path)
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ValueError(f"path {str(path)!r} is not an idx file (bad magic number)")
    ndim = raw[3]
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    count = int(np.prod(shape)) if shape else 0
    if len(raw) != 4 + 4 * ndim + count * dtype.itemsize:
        raise ValueError(f"path {str(path)!r}: {len(raw)} bytes do not hold shape {shape}")
    return np.frombuffer(raw, dtype, count=count, offset=4 + 4 * ndim).reshape(shape)


def read_fashion(directory: Path | str = FASHION_DIR) -> dict[str, np.ndarray]:
    """The four arrays of :data:`FASHION_FILES` (images ``(n, 28, 28)``, labels ``(n,)``);
    ``FileNotFoundError`` naming the missing files and the package."""
    directory = Path(directory)
    missing = [f for f in FASHION_FILES.values() if not (directory / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"Fashion-MNIST files {missing} not in {directory} (Debian package "
            f"{FASHION_PACKAGE} not installed)"
        )
    arrays = {key: read_idx(directory / name) for key, name in FASHION_FILES.items()}
    for part in ("train", "test"):
        images, labels = arrays[f"{part}_x"], arrays[f"{part}_y"]
        if images.ndim != 3 or labels.shape != (len(images),):
            raise ValueError(f"directory {str(directory)!r}: {part} images and labels disagree")
    return arrays


def ensure_fashion(directory: Path | str = FASHION_DIR) -> str:
    """Make the Fashion-MNIST files present if possible; what was done, for the report.

    Installs :data:`FASHION_PACKAGE` with ``apt-get`` when the files are missing, the process
    runs as root and ``apt-get`` exists; otherwise says why it did not.
    """
    directory = Path(directory)
    if all((directory / f).is_file() for f in FASHION_FILES.values()):
        return "present"
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return f"missing; not root, so {FASHION_PACKAGE} was not installed"
    if shutil.which("apt-get") is None:
        return "missing; no apt-get on this machine"
    done = subprocess.run(
        ["apt-get", "install", "-y", FASHION_PACKAGE],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or [""]
    return f"apt-get install -y {FASHION_PACKAGE}: exit {done.returncode} {tail[0]}".strip()
