"""Training data: loading it from a spec string and batching it on the device.

:func:`load_data` turns a spec into a :class:`Dataset` of uint8 image tensors:

- ``embedded``: the Fashion-MNIST sample shipped in the package (6,000 train /
  1,500 val, 1×28×28; see ``data/ATTRIBUTION.md``);
- ``fashion-mnist-full[:DIR]``: the official 60k/10k IDX files, by default from
  the Debian package ``dataset-fashion-mnist``;
- ``cifar10:PATH``: the CIFAR-10 python batches, unpickled with a loader that
  only accepts numpy arrays, never arbitrary objects;
- ``synthetic[:N]``: a small learnable dataset made on the fly, for tests;
- any other string: an image folder with one sub-folder per class, decoded
  once and cached under ``$XDG_CACHE_HOME/scalesearch``.

:class:`DeviceData` keeps those tensors on the training device and yields
augmented, normalised float batches with whole-batch tensor ops: proxy
training is short, so per-image Python in the input pipeline would dominate.

>>> ds = load_data("synthetic:40")
>>> ds.train_x.shape, ds.val_x.shape, ds.num_classes
(torch.Size([40, 1, 16, 16]), torch.Size([10, 1, 16, 16]), 10)
"""
from __future__ import annotations

import gzip
import hashlib
import logging
import math
import os
import pickle
import struct
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from .errors import ScaleSearchError

log = logging.getLogger(__name__)

EMBEDDED = Path(__file__).parent / "data" / "fashion_mnist_sample.npz"
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
FOLDER_SIDE = 64  # image folders are resized once to this side; DeviceData rescales per trial
VAL_FRACTION = 0.2
CACHE_VERSION = 1  # bump when the cached image-folder format changes
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

    def __post_init__(self) -> None:
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


def load_data(spec: str = "embedded") -> Dataset:
    """The dataset named by `spec`; see the module docstring for the forms."""
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
    path = Path(spec).expanduser()
    if spec and path.is_dir():
        return _load_image_folder(path)
    if spec and path.exists():
        raise ScaleSearchError(f"data '{spec}' is a file; expected {SPECS_HELP}")
    raise ScaleSearchError(f"unknown data '{spec}': expected {SPECS_HELP}")


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
    if not 1 <= n <= len(y):
        raise ScaleSearchError(f"data {what}: asked for {n} images but it has {len(y)}")
    labels = y.numpy()
    key = np.random.default_rng(seed).random(len(labels))
    by_class = np.lexsort((key, labels))  # grouped by class, random order inside each
    starts = np.searchsorted(labels[by_class], labels[by_class])  # first position of each class
    rank = np.empty(len(labels), np.int64)
    rank[by_class] = np.arange(len(labels)) - starts
    # Every class's 1st pick, then every class's 2nd, ...: balanced to within one image.
    picked = np.lexsort((labels, rank))[:n]
    return torch.from_numpy(np.sort(picked))


# --- npz (embedded sample and image-folder cache) ---------------------------

def _load_npz(path: Path, name: str, source: str) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in ("train_x", "train_y", "val_x", "val_y", "classes")}
    except (OSError, KeyError, ValueError) as e:
        raise ScaleSearchError(f"data file {path} is missing or not a scalesearch npz ({e})") from None
    return _from_arrays(arrays, name, source)


def _from_arrays(arrays: dict[str, np.ndarray], name: str, source: str) -> Dataset:
    x = {k: torch.from_numpy(arrays[k]) for k in ("train_x", "val_x")}
    y = {k: torch.from_numpy(arrays[k].astype(np.int64)) for k in ("train_y", "val_y")}
    return Dataset(name, x["train_x"], y["train_y"], x["val_x"], y["val_y"],
                   tuple(str(c) for c in arrays["classes"]), source)


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
    """Fixed per-class smooth patterns plus per-image noise and brightness: learnable, not trivial."""
    g = torch.Generator().manual_seed(0)
    protos = F.interpolate(torch.rand(classes, 1, 4, 4, generator=g), size=side, mode="bilinear",
                           align_corners=False)

    def make(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.arange(n) % classes
        bright = 0.7 + 0.3 * torch.rand(n, 1, 1, 1, generator=g)
        x = bright * protos[y] * 0.7 + 0.3 * torch.rand(n, 1, side, side, generator=g)
        return (x * 255).round().clamp(0, 255).to(torch.uint8), y

    train_x, train_y = make(n_train)
    val_x, val_y = make(max(classes, n_train // 4))
    return Dataset(f"synthetic-{n_train}", train_x, train_y, val_x, val_y,
                   tuple(f"pattern{i}" for i in range(classes)), "synthetic")


# --- image folders ----------------------------------------------------------

def _load_image_folder(folder: Path, side: int = FOLDER_SIDE) -> Dataset:
    folder = folder.resolve()
    files = _scan_folder(folder)
    key = hashlib.sha256(f"v{CACHE_VERSION}\n{folder}\n{side}\n".encode())
    for cls, paths in files.items():
        for p in paths:
            st = p.stat()
            key.update(f"{cls}\t{p.relative_to(folder)}\t{st.st_mtime_ns}\t{st.st_size}\n".encode())
    cache = _cache_dir() / f"imagefolder-{key.hexdigest()[:24]}.npz"
    if cache.is_file():
        try:
            ds = _load_npz(cache, folder.name, str(folder))
            log.info("image folder %s: loaded from cache %s", folder, cache)
            return ds
        except ScaleSearchError as e:
            log.warning("ignoring unreadable cache %s: %s", cache, e)
    arrays = _decode_folder(files, side)
    _write_cache(cache, arrays)
    return _from_arrays(arrays, folder.name, str(folder))


def _scan_folder(folder: Path) -> dict[str, list[Path]]:
    """Class name → sorted image paths, for each non-hidden sub-folder that has images."""
    files = {}
    for d in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        images = sorted(p for p in d.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if images:
            files[d.name] = images
        else:
            log.warning("image folder %s: skipping %s, it has no images", folder, d.name)
    if len(files) < 2:
        raise ScaleSearchError(f"data folder {folder} has {'no' if not files else 'only one'} class sub-folder "
                               "with images; expected one sub-folder per class, at least 2")
    return files


def _decode_folder(files: dict[str, list[Path]], side: int) -> dict[str, np.ndarray]:
    from PIL import Image, ImageOps  # only image folders need Pillow

    log.info("decoding %d images to %d px (once; cached afterwards)", sum(map(len, files.values())), side)
    split: dict[str, tuple[list[np.ndarray], list[int]]] = {"train": ([], []), "val": ([], [])}
    for label, paths in enumerate(files.values()):
        val_idx = _val_positions(len(paths))
        for i, p in enumerate(paths):
            try:
                with Image.open(p) as im:
                    # Shorter side to `side`, then centre crop: no distortion of the aspect ratio.
                    im = ImageOps.fit(im.convert("RGB"), (side, side), Image.Resampling.BILINEAR)
            except OSError as e:
                raise ScaleSearchError(f"data folder: cannot read image {p} ({e})") from None
            xs, ys = split["val" if i in val_idx else "train"]
            xs.append(np.asarray(im, np.uint8).transpose(2, 0, 1))
            ys.append(label)
    arrays: dict[str, np.ndarray] = {"classes": np.array(list(files))}
    for name, (xs, ys) in split.items():
        arrays[f"{name}_x"] = np.stack(xs) if xs else np.zeros((0, 3, side, side), np.uint8)
        arrays[f"{name}_y"] = np.array(ys, np.int64)
    return arrays


def _val_positions(n: int) -> set[int]:
    """A fixed ~20% of a class's sorted files, spread evenly; at least one when n >= 2."""
    k = min(n - 1, max(1, round(n * VAL_FRACTION))) if n >= 2 else 0
    return {int((j + 0.5) * n / k) for j in range(k)}


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "scalesearch"


def _write_cache(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write atomically (temp file + rename) so concurrent runs never read half a file."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as f:
            tmp = f.name
            np.savez(f, **arrays)
        os.replace(tmp, path)
        log.info("cached decoded images in %s", path)
    except OSError as e:  # a read-only cache only costs time
        log.warning("cannot cache decoded images in %s: %s", path, e)
        if tmp:
            Path(tmp).unlink(missing_ok=True)



# --- device-resident batching -----------------------------------------------

class DeviceData:
    """Holds a Dataset's uint8 tensors on `device` once; yields ready float batches.

    Train batches get the standard small-image augmentation (random crop from a
    zero-padded image, padding 1/8 of the side, i.e. 4 px at 32 px, and a random
    horizontal flip), then every batch is resized to the trial's resolution,
    normalised with the train set's per-channel mean and std and, if asked, made
    channels_last. All of it is whole-batch tensor ops on the device.
    """

    def __init__(self, ds: Dataset, device: torch.device, channels_last: bool = True):
        self.device = torch.device(device)
        self.channels_last = channels_last
        self.num_classes, self.in_channels = ds.num_classes, ds.in_channels
        self.train_x, self.train_y = ds.train_x.to(self.device), ds.train_y.to(self.device)
        self.val_x, self.val_y = ds.val_x.to(self.device), ds.val_y.to(self.device)
        mean, std = _channel_stats(ds.train_x)
        self.mean, self.std = tuple(mean.tolist()), tuple(std.tolist())
        # Normalising uint8 values v: (v / 255 - mean) / std == v * scale + shift.
        self._scale = (1 / (255 * std)).float().view(1, -1, 1, 1).to(self.device)
        self._shift = (-mean / std).float().view(1, -1, 1, 1).to(self.device)
        self.pad = max(1, round(min(ds.train_x.shape[-2:]) / 8))

    @property
    def num_train(self) -> int:
        return len(self.train_y)

    @property
    def num_val(self) -> int:
        return len(self.val_y)

    def train_batches(self, batch_size: int, resolution: int,
                      generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One shuffled, augmented epoch; every image once, the last batch may be smaller."""
        n, gdev = self.num_train, generator.device
        # The whole epoch's random draws at once, on the generator's device: one copy, reproducible.
        perm = torch.randperm(n, generator=generator, device=gdev).to(self.device)
        offsets = torch.randint(0, 2 * self.pad + 1, (n, 2), generator=generator, device=gdev).to(self.device)
        flips = torch.randint(0, 2, (n,), generator=generator, device=gdev).bool().to(self.device)
        for start in range(0, n, batch_size):
            idx = perm[start:start + batch_size]
            x = self._crop_flip(self.train_x[idx], offsets[start:start + batch_size], flips[start:start + batch_size])
            yield self._finish(x, resolution), self.train_y[idx]

    def val_batches(self, batch_size: int, resolution: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The val set in a fixed order, without augmentation."""
        for start in range(0, self.num_val, batch_size):
            yield (self._finish(self.val_x[start:start + batch_size], resolution),
                   self.val_y[start:start + batch_size])

    def _crop_flip(self, x: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
        """Per-sample crop of the padded batch, the flip folded into the column index: one gather."""
        b, c, h, w = x.shape
        width = w + 2 * self.pad
        padded = F.pad(x, (self.pad,) * 4).view(b, c, -1)
        rows = offsets[:, :1] + torch.arange(h, device=x.device)
        cols = torch.arange(w, device=x.device).expand(b, w)
        cols = offsets[:, 1:] + torch.where(flips[:, None], w - 1 - cols, cols)
        # A flat index per output pixel; 4x faster on CPU than 4-tensor advanced indexing.
        flat = (rows[:, :, None] * width + cols[:, None, :]).view(b, 1, h * w).expand(b, c, h * w)
        return padded.gather(2, flat).view(b, c, h, w)

    def _finish(self, x: torch.Tensor, resolution: int) -> torch.Tensor:
        x = x.float()
        if self.channels_last:  # before resizing: interpolate keeps the memory format
            x = x.contiguous(memory_format=torch.channels_last)
        if x.shape[-2:] != (resolution, resolution):
            # Antialias only acts when shrinking (e.g. a 64 px folder at 32 px) and avoids aliasing there.
            x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False,
                              antialias=resolution < min(x.shape[-2:]))
        return x.mul_(self._scale).add_(self._shift)


def _channel_stats(x: torch.Tensor, chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of uint8 images in [0, 1] units, in float64 chunks to bound memory."""
    total = torch.zeros(x.shape[1], dtype=torch.float64)
    squares = torch.zeros_like(total)
    for start in range(0, len(x), chunk):
        part = x[start:start + chunk].double()
        total += part.sum((0, 2, 3))
        squares += part.square().sum((0, 2, 3))
    count = max(1, x.numel() // x.shape[1])
    mean = total / count
    std = (squares / count - mean.square()).clamp_min(0).sqrt()
    return mean / 255, (std / 255).clamp_min(1e-3)  # a constant channel must not divide by zero
