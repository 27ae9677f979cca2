"""Training data: loading it from a spec string and batching it on the device.

:func:`load_data` turns a spec into a :class:`Dataset` of uint8 image tensors:

- ``embedded``: the Fashion-MNIST sample shipped in the package (6,000 train /
  1,500 val, 1×28×28; see ``data/ATTRIBUTION.md``);
- ``fashion-mnist-full[:DIR]``: the official 60k/10k IDX files, by default from
  the Debian package ``dataset-fashion-mnist``;
- ``cifar10:PATH``: the CIFAR-10 python batches, unpickled with a loader that
  only accepts numpy arrays, never arbitrary objects;
- ``synthetic[:N]``: a small learnable dataset made on the fly, for tests;
- any other string: an image folder with one sub-folder per class; only the
  class-balanced subset a search uses is decoded, at the side it needs, and
  cached (see :mod:`scalesearch.data`).

:class:`scalesearch.data.DeviceData`
keeps those tensors on the training device and yields augmented, normalised
float batches. A caller that needs the classes and channels before it knows the
side and counts to decode at gets them from :func:`data_shape`.

>>> ds = load_data("synthetic:40")
>>> ds.train_x.shape, ds.val_x.shape, ds.num_classes
(torch.Size([40, 1, 16, 16]), torch.Size([10, 1, 16, 16]), 10)
"""
from __future__ import annotations

import gzip
import logging
import math
import pickle
import struct
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ScaleSearchError
from ._folder import Report, RichReport, balanced_order, load_folder, require_memory, split_pools

log = logging.getLogger(__name__)

AUGMENTS = ("pad-crop", "random-resized-crop")
EMBEDDED = Path(__file__).parent / "fashion_mnist_sample.npz"
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
FOLDER_SIDE = 64  # image folders' side when the caller does not say which it needs
SPECS_HELP = "embedded, fashion-mnist-full[:DIR], cifar10:PATH, synthetic[:N] or an image folder"


@dataclass(frozen=True)
class Dataset:
    """Train and val images as uint8 (N, C, H, W) CPU tensors with int64 labels."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    classes: tuple[str, ...]
    source: str  # a path or "embedded": provenance only
    augment: str = "pad-crop"  # or "random-resized-crop" (photos); see DeviceData

    def __post_init__(self) -> None:
        if self.augment not in AUGMENTS:
            raise ScaleSearchError(f"data {self.name}: augment must be one of {', '.join(AUGMENTS)}, got {self.augment!r}")
        for split, x, y in (("train", self.train_x, self.train_y), ("val", self.val_x, self.val_y)):
            if x.dtype != torch.uint8 or x.ndim != 4 or y.dtype != torch.int64 or len(x) != len(y):
                raise ScaleSearchError(f"data {self.name}: {split} images must be uint8 (N, C, H, W) "
                                       f"with as many int64 labels, got {x.dtype} {tuple(x.shape)} and {len(y)} labels")
        if self.train_x.shape[1:] != self.val_x.shape[1:]:
            raise ScaleSearchError(f"data {self.name}: train images are {tuple(self.train_x.shape[1:])} "
                                   f"but val images are {tuple(self.val_x.shape[1:])}")

    @property
    def in_channels(self) -> int:
        return self.train_x.shape[1]

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def load_data(spec: str | Dataset = "embedded", *, side: int | None = None, train: int | None = None,
              val: int | None = None, seed: int = 0, report: Report | None = None) -> Dataset:
    """The dataset named by `spec` (see the module docstring for the forms), or a Dataset given as it is.

    `train`, `val` and `seed` pick the class-balanced subset a search uses (at most
    what there is; None keeps a split whole). `side` is the largest side in px it
    trains at. Image folders decode only that subset at that side (default
    FOLDER_SIDE), showing progress and notes through `report` (default: rich on
    stderr); the other forms are in memory already and are only subset.
    """
    if isinstance(spec, Dataset):
        ds = spec
    elif (folder := _image_folder(spec)) is not None:
        return _load_image_folder(folder, side or FOLDER_SIDE, train, val, seed, report or RichReport())
    else:
        ds = _load_in_memory(spec)
    clamp = lambda n, y: None if n is None else min(n, len(y))  # noqa: E731
    return subset(ds, clamp(train, ds.train_y), clamp(val, ds.val_y), seed)


def data_shape(spec: str | Dataset = "embedded") -> tuple[int, int]:
    """(classes, channels) of `spec`, decoding nothing: an image folder is only listed (always RGB).

    For a caller that must know them before it knows the side and counts to pass to load_data.
    """
    if isinstance(spec, Dataset):
        return spec.num_classes, spec.in_channels
    if (folder := _image_folder(spec)) is not None:
        return len(split_pools(folder.resolve())[0]), 3
    ds = _load_in_memory(spec)
    return ds.num_classes, ds.in_channels


def _image_folder(spec: str) -> Path | None:
    kind = spec.partition(":")[0]
    path = Path(spec).expanduser()
    named = kind in ("embedded", "fashion-mnist-full", "cifar10", "synthetic")
    return path if spec and not named and path.is_dir() else None


def _load_in_memory(spec: str) -> Dataset:
    kind, sep, arg = spec.partition(":")
    if kind == "embedded" and not sep:
        return _load_npz(EMBEDDED, "fashion-mnist-sample", "embedded")
    if kind == "fashion-mnist-full":
        return _load_fashion_mnist(Path(arg).expanduser() if arg else FASHION_MNIST_DIR, explicit=bool(arg))
    if kind == "cifar10":
        if not arg:
            raise ScaleSearchError("cifar10 needs a path: cifar10:PATH to the cifar-10-batches-py directory")
        return _load_cifar10(Path(arg).expanduser())
    if kind == "synthetic":
        return _synthetic(_parse_count(arg) if sep else 512)
    if spec and Path(spec).expanduser().exists():
        raise ScaleSearchError(f"data '{spec}' is a file; expected {SPECS_HELP}")
    raise ScaleSearchError(f"unknown data '{spec}': expected {SPECS_HELP}")


POOL_SEEDS = 8  # seeds' worth of distinct training subsets a run loads; later seeds draw overlapping ones


def pool_size(train: int, max_seeds: int) -> int:
    """Training images a run loads for seeds that each draw `train` of them: distinct subsets for the first
    POOL_SEEDS seeds. An image folder decodes the pool inside the run's time budget, before the first trial,
    so it does not grow with every seed a long run may reach.

    >>> pool_size(1200, 32)
    9600
    """
    return train * min(max_seeds, POOL_SEEDS)


def subset(ds: Dataset, train: int | None, val: int | None, seed: int) -> Dataset:
    """A class-balanced, seeded subset of `train` and `val` images (None keeps a split whole)."""
    if train is not None:
        idx = _balanced_pick(ds.train_y, train, seed, f"{ds.name} train")
        ds = replace(ds, train_x=ds.train_x[idx], train_y=ds.train_y[idx])
    if val is not None:
        idx = _balanced_pick(ds.val_y, val, seed + 1, f"{ds.name} val")
        ds = replace(ds, val_x=ds.val_x[idx], val_y=ds.val_y[idx])
    return ds


def _balanced_pick(y: torch.Tensor, n: int, seed: int, what: str) -> torch.Tensor:
    """Sorted indices of `n` samples dealt round-robin over classes in a seeded random order."""
    if not 0 <= n <= len(y):
        raise ScaleSearchError(f"data {what}: asked for {n} images but it has {len(y)}")
    return torch.from_numpy(np.sort(balanced_order(y.numpy(), seed)[:n]))


# --- npz (the embedded sample) ---------------------------

def _load_npz(path: Path, name: str, source: str) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in ("train_x", "train_y", "val_x", "val_y", "classes")}
    except (OSError, KeyError, ValueError) as e:
        raise ScaleSearchError(f"data file {path} is missing or not a scalesearch npz ({e})") from None
    return _from_arrays(arrays, name, source)


def _from_arrays(arrays: dict[str, np.ndarray], name: str, source: str, augment: str = "pad-crop") -> Dataset:
    x = {k: torch.from_numpy(arrays[k]) for k in ("train_x", "val_x")}
    y = {k: torch.from_numpy(arrays[k].astype(np.int64)) for k in ("train_y", "val_y")}
    return Dataset(name, x["train_x"], y["train_y"], x["val_x"], y["val_y"],
                   tuple(str(c) for c in arrays["classes"]), source, augment)


# --- Fashion-MNIST IDX files ------------------------------------------------

def _load_fashion_mnist(folder: Path, explicit: bool) -> Dataset:
    if not folder.is_dir():
        hint = "" if explicit else "; install the Debian package dataset-fashion-mnist or give fashion-mnist-full:DIR"
        raise ScaleSearchError(f"fashion-mnist-full: {folder} not found{hint}")
    arrays = [_read_idx(folder, f"{prefix}-{kind}") for prefix in ("train", "t10k")
              for kind in ("images-idx3-ubyte", "labels-idx1-ubyte")]
    for images, labels in (arrays[:2], arrays[2:]):
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels) or labels.max() >= 10:
            raise ScaleSearchError(f"fashion-mnist-full: {folder} has mismatched images {images.shape} "
                                   f"and labels {labels.shape}")
    tx, ty, vx, vy = (torch.from_numpy(a) for a in arrays)
    return Dataset("fashion-mnist", tx[:, None], ty.long(), vx[:, None], vy.long(),
                   FASHION_MNIST_CLASSES, str(folder))


def _read_idx(folder: Path, stem: str) -> np.ndarray:
    """An unsigned-byte IDX file, gzipped or not, as an array of its declared shape."""
    path = next((p for p in (folder / f"{stem}.gz", folder / stem) if p.is_file()), None)
    if path is None:
        raise ScaleSearchError(f"fashion-mnist-full: {folder} has no {stem}[.gz]")
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
        shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
        if zero != 0 or dtype != 0x08 or len(raw) != 4 + 4 * ndim + math.prod(shape):
            raise ValueError("bad header or size")
    except (OSError, EOFError, ValueError, struct.error) as e:
        raise ScaleSearchError(f"fashion-mnist-full: {path} is not an unsigned-byte IDX file ({e})") from None
    # bytearray: a writable buffer, so torch.from_numpy needs no copy and does not warn.
    return np.frombuffer(bytearray(raw), np.uint8, offset=4 + 4 * ndim).reshape(shape)


# --- CIFAR-10 python batches ------------------------------------------------

def _np_reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only: a pickle can run any code it names."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _np_reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _np_reconstruct,
        ("numpy", "ndarray"): lambda: np.ndarray,
        ("numpy", "dtype"): lambda: np.dtype,
    }

    def find_class(self, module: str, name: str):
        allowed = self._ALLOWED.get((module, name))
        if allowed is None:
            raise ScaleSearchError(f"refusing to unpickle {module}.{name}: CIFAR-10 batches hold only numpy arrays")
        return allowed()


def _unpickle(path: Path) -> object:
    try:
        with path.open("rb") as f:
            return _ArrayUnpickler(f, encoding="bytes").load()
    except ScaleSearchError as e:
        raise ScaleSearchError(f"cifar10: {path}: {e}") from None
    except Exception as e:  # a corrupt pickle can raise nearly anything
        raise ScaleSearchError(f"cifar10: cannot read {path} ({type(e).__name__}: {e})") from None


def _cifar_batch(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    if not path.is_file():
        raise ScaleSearchError(f"cifar10: {path} not found; expected the cifar-10-batches-py directory "
                               "with data_batch_1..5 and test_batch")
    batch = _unpickle(path)
    data = batch.get(b"data") if isinstance(batch, dict) else None
    labels = batch.get(b"labels") if isinstance(batch, dict) else None
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2
            and data.shape[1] == 3072 and isinstance(labels, list) and len(labels) == len(data)):
        raise ScaleSearchError(f"cifar10: {path} is not a CIFAR-10 batch "
                               "(expected b'data' uint8 (N, 3072) and N b'labels')")
    y = torch.tensor(labels, dtype=torch.int64)
    if len(y) and not 0 <= int(y.min()) <= int(y.max()) < 10:
        raise ScaleSearchError(f"cifar10: {path} has labels outside 0..9")
    return torch.from_numpy(np.ascontiguousarray(data).reshape(-1, 3, 32, 32)), y


def _load_cifar10(folder: Path) -> Dataset:
    if not folder.is_dir():
        raise ScaleSearchError(f"cifar10: {folder} is not a directory; expected cifar-10-batches-py")
    train = [_cifar_batch(folder / f"data_batch_{i}") for i in range(1, 6)]
    val_x, val_y = _cifar_batch(folder / "test_batch")
    classes = CIFAR10_CLASSES
    if (folder / "batches.meta").is_file():
        meta = _unpickle(folder / "batches.meta")
        names = meta.get(b"label_names") if isinstance(meta, dict) else None
        if isinstance(names, list) and len(names) == 10:
            classes = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
    return Dataset("cifar10", torch.cat([x for x, _ in train]), torch.cat([y for _, y in train]),
                   val_x, val_y, classes, str(folder))


# --- synthetic --------------------------------------------------------------

def _parse_count(arg: str) -> int:
    if not arg.isdigit() or int(arg) < 10:
        raise ScaleSearchError(f"synthetic:{arg}: N must be a whole number of train images, at least 10")
    return int(arg)


def _synthetic(n_train: int, classes: int = 10, side: int = 16) -> Dataset:
    """Fixed per-class 4×4 checker patterns plus per-image noise and brightness.

    Easy on purpose: the tests' proxies take a handful of steps, and a proxy that
    cannot leave chance is (rightly) failed as "did not learn".
    """
    require_memory(12 * n_train * side * side, f"synthetic:{n_train}", "use a smaller N")  # float32 while made
    g = torch.Generator().manual_seed(0)
    protos = F.interpolate((torch.rand(classes, 1, 4, 4, generator=g) > 0.5).float(), size=side, mode="nearest")

    def make(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.arange(n) % classes
        bright = 0.8 + 0.2 * torch.rand(n, 1, 1, 1, generator=g)
        x = bright * protos[y] * 0.8 + 0.2 * torch.rand(n, 1, side, side, generator=g)
        return (x * 255).round().clamp(0, 255).to(torch.uint8), y

    train_x, train_y = make(n_train)
    val_x, val_y = make(max(classes, n_train // 4))
    return Dataset(f"synthetic-{n_train}", train_x, train_y, val_x, val_y,
                   tuple(f"pattern{i}" for i in range(classes)), "synthetic")


# --- image folders (decoding and caching: scalesearch.data) ----------------

def _load_image_folder(folder: Path, side: int, train: int | None, val: int | None, seed: int,
                       report: Report) -> Dataset:
    decoded = load_folder(folder, side, train, val, seed, report)
    return _from_arrays(decoded.arrays, folder.resolve().name, str(folder.resolve()), decoded.augment)
