"""Build the embedded Fashion-MNIST sample: scalesearch/data/fashion_mnist_sample.npz.

Reads the official gzipped IDX files (Debian package dataset-fashion-mnist) and
keeps a class-balanced, seeded sample: 600 train images per class from the
official train split and 150 val images per class from the official test split.
Rerunning it writes the same arrays.

    python scripts/make_embedded_data.py [--src DIR] [--out FILE]
"""
from __future__ import annotations

import argparse
import gzip
import struct
from pathlib import Path

import numpy as np

SEED = 20170825  # Fashion-MNIST release date; any fixed value would do
TRAIN_PER_CLASS, VAL_PER_CLASS = 600, 150
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
SRC = Path("/usr/share/datasets/fashion-mnist")
OUT = Path(__file__).resolve().parent.parent / "scalesearch" / "data" / "fashion_mnist_sample.npz"


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (ubyte data only) as a numpy array of its declared shape."""
    raw = gzip.decompress(path.read_bytes())
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    assert zero == 0 and dtype == 0x08, f"{path}: not a ubyte IDX file"
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def balanced(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of `per_class` random samples of each class."""
    picks = [rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in range(len(CLASSES))]
    return np.sort(np.concatenate(picks))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, default=SRC)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    rng = np.random.default_rng(SEED)
    arrays = {}
    for split, prefix, per_class in (("train", "train", TRAIN_PER_CLASS), ("val", "t10k", VAL_PER_CLASS)):
        x = read_idx(args.src / f"{prefix}-images-idx3-ubyte.gz")
        y = read_idx(args.src / f"{prefix}-labels-idx1-ubyte.gz")
        idx = balanced(y, per_class, rng)
        arrays[f"{split}_x"] = x[idx][:, None]  # (N, 1, 28, 28)
        arrays[f"{split}_y"] = y[idx].astype(np.int64)
    np.savez_compressed(args.out, **arrays, classes=np.array(CLASSES))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB): "
          + ", ".join(f"{k} {v.shape}" for k, v in arrays.items()))


if __name__ == "__main__":
    main()
