"""Data loading (every spec form, the safe CIFAR unpickler, caching) and DeviceData batching."""
from __future__ import annotations

import gzip
import os
import pickle
import struct
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from scalesearch.data import _load as data
from scalesearch.data import DeviceData, Dataset, load_data, subset
from scalesearch.errors import ScaleSearchError


@pytest.fixture(scope="module")
def embedded() -> Dataset:
    return load_data("embedded")


def counts(y: torch.Tensor) -> list[int]:
    return torch.bincount(y).tolist()


# --- loaders ------------------------------------------------------------------

def test_embedded_is_the_balanced_fashion_mnist_sample(embedded):
    ds = embedded
    assert ds.name == "fashion-mnist-sample" and ds.source == "embedded"
    assert ds.train_x.shape == (6000, 1, 28, 28) and ds.val_x.shape == (1500, 1, 28, 28)
    assert ds.train_x.dtype == ds.val_x.dtype == torch.uint8
    assert ds.train_y.dtype == ds.val_y.dtype == torch.int64
    assert ds.num_classes == 10 and ds.in_channels == 1 and ds.classes[0] == "T-shirt/top"
    assert counts(ds.train_y) == [600] * 10 and counts(ds.val_y) == [150] * 10
    assert load_data().train_x.equal(ds.train_x)  # "embedded" is the default


def test_subset_is_balanced_and_deterministic(embedded):
    a = subset(embedded, train=105, val=30, seed=1)
    assert len(a.train_y) == 105 and len(a.val_y) == 30
    assert set(counts(a.train_y)) == {10, 11} and counts(a.val_y) == [3] * 10
    b = subset(embedded, train=105, val=30, seed=1)
    assert a.train_x.equal(b.train_x) and a.val_y.equal(b.val_y)
    c = subset(embedded, train=105, val=30, seed=2)
    assert not a.train_x.equal(c.train_x)
    whole = subset(embedded, None, None, seed=0)
    assert whole.train_x.equal(embedded.train_x) and whole.val_x.equal(embedded.val_x)
    with pytest.raises(ScaleSearchError, match="asked for 6001 images but it has 6000"):
        subset(embedded, 6001, None, seed=0)


def test_load_data_picks_the_subset_a_search_asks_for(embedded):
    ds = load_data("embedded", train=105, val=30, seed=1)
    expected = subset(embedded, 105, 30, seed=1)
    assert ds.train_x.equal(expected.train_x) and ds.val_y.equal(expected.val_y)
    whole = load_data("synthetic:40", train=1000, val=None, side=512)  # at most what there is; side: folders only
    assert whole.train_x.shape == (40, 1, 16, 16) and len(whole.val_y) == 10


def test_subset_deals_classes_evenly_until_small_ones_run_out():
    ds = load_data("synthetic:20")
    y = torch.tensor([0] * 2 + [1] * 9 + [2] * 9)
    ds = replace(ds, train_x=ds.train_x, train_y=y)
    assert counts(subset(ds, 12, None, seed=0).train_y) == [2, 5, 5]


def test_synthetic_is_deterministic_and_learnable():
    a, b = load_data("synthetic"), load_data("synthetic")
    assert a.train_x.shape == (512, 1, 16, 16) and a.val_x.shape == (128, 1, 16, 16)
    assert a.train_x.equal(b.train_x) and a.val_x.equal(b.val_x) and a.num_classes == 10
    assert counts(a.train_y) == [52, 52] + [51] * 8
    # Nearest class mean already beats chance by far: a tiny net has something to learn.
    x, v = a.train_x.flatten(1).float(), a.val_x.flatten(1).float()
    means = torch.stack([x[a.train_y == c].mean(0) for c in range(10)])
    accuracy = (torch.cdist(v, means).argmin(1) == a.val_y).float().mean()
    assert accuracy > 0.5
    assert load_data("synthetic:40").train_x.shape == (40, 1, 16, 16)


def write_idx(path: Path, array: np.ndarray, compress: bool) -> None:
    raw = struct.pack(">HBB", 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)


@pytest.mark.parametrize("compress", [True, False])
def test_fashion_mnist_full_reads_idx_files_from_a_folder(tmp_path, compress):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 30), ("t10k", 10)):
        suffix = ".gz" if compress else ""
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte{suffix}", rng.integers(0, 256, (n, 28, 28), np.uint8), compress)
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte{suffix}", np.arange(n, dtype=np.uint8) % 10, compress)
    ds = load_data(f"fashion-mnist-full:{tmp_path}")
    assert ds.train_x.shape == (30, 1, 28, 28) and ds.val_x.shape == (10, 1, 28, 28)
    assert ds.train_y.tolist() == [i % 10 for i in range(30)] and ds.source == str(tmp_path)


def test_fashion_mnist_full_rejects_truncated_idx(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((3, 28, 28), np.uint8), compress=False)
    with (tmp_path / "train-images-idx3-ubyte").open("ab") as f:
        f.truncate(100)
    with pytest.raises(ScaleSearchError, match="not an unsigned-byte IDX file"):
        load_data(f"fashion-mnist-full:{tmp_path}")


@pytest.mark.skipif(not data.FASHION_MNIST_DIR.is_dir(), reason="Debian package dataset-fashion-mnist not installed")
def test_fashion_mnist_full_from_the_debian_package():
    ds = load_data("fashion-mnist-full")
    assert ds.train_x.shape == (60000, 1, 28, 28) and ds.val_x.shape == (10000, 1, 28, 28)
    assert counts(ds.train_y) == [6000] * 10 and counts(ds.val_y) == [1000] * 10


# --- CIFAR-10 and the restricted unpickler -----------------------------------------

class Py2Pickler(pickle._Pickler):  # type: ignore[name-defined]
    """Writes bytes as Python 2 str opcodes, as in the real cifar-10-batches-py files."""

    def save_bytes(self, obj: bytes) -> None:
        n = len(obj)
        self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj if n < 256
                   else pickle.BINSTRING + struct.pack("<i", n) + obj)
        self.memoize(obj)

    dispatch = {**pickle._Pickler.dispatch, bytes: save_bytes}  # type: ignore[attr-defined]


def py2_pickle(obj: object, path: Path) -> None:
    with path.open("wb") as f:
        Py2Pickler(f, protocol=2).dump(obj)
    # numpy 1.x named the module numpy.core, as the files in the wild do.
    path.write_bytes(path.read_bytes().replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n"))


def write_cifar(folder: Path, per_batch: int = 4) -> None:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"batch_label": b"fake", b"data": rng.integers(0, 256, (per_batch, 3072), np.uint8),
                 b"labels": [int(i) for i in rng.integers(0, 10, per_batch)],
                 b"filenames": [b"x.png"] * per_batch}
        py2_pickle(batch, folder / name)
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    py2_pickle({b"label_names": names, b"num_vis": 3072, b"num_cases_per_batch": per_batch}, folder / "batches.meta")


def test_cifar10_reads_python_batches(tmp_path):
    write_cifar(tmp_path / "cifar-10-batches-py")
    assert b"numpy.core.multiarray" in (tmp_path / "cifar-10-batches-py" / "test_batch").read_bytes()
    ds = load_data(f"cifar10:{tmp_path / 'cifar-10-batches-py'}")
    assert ds.train_x.shape == (20, 3, 32, 32) and ds.val_x.shape == (4, 3, 32, 32)
    assert ds.train_x.dtype == torch.uint8 and ds.train_y.dtype == torch.int64
    assert ds.classes[:2] == ("airplane", "automobile") and ds.in_channels == 3
    with (tmp_path / "cifar-10-batches-py" / "data_batch_1").open("rb") as f:
        raw = pickle.load(f, encoding="bytes")
    # Row layout: 1024 red, then green, then blue values, each row-major 32x32.
    assert ds.train_x[0, 1, 0, 5] == raw[b"data"][0, 1024 + 5]


class Evil:
    def __reduce__(self):
        return os.system, ("touch pwned",)


def test_cifar10_refuses_pickles_that_name_anything_but_arrays(tmp_path, monkeypatch):
    write_cifar(tmp_path / "c")
    py2_pickle({b"data": Evil(), b"labels": []}, tmp_path / "c" / "data_batch_3")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ScaleSearchError, match=r"data_batch_3: refusing to unpickle (posix|os|nt)\.system"):
        load_data(f"cifar10:{tmp_path / 'c'}")
    assert not (tmp_path / "pwned").exists()


def test_cifar10_rejects_wrong_contents(tmp_path):
    write_cifar(tmp_path / "c")
    with (tmp_path / "c" / "test_batch").open("wb") as f:
        pickle.dump({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]}, f, protocol=4)
    with pytest.raises(ScaleSearchError, match="test_batch is not a CIFAR-10 batch"):
        load_data(f"cifar10:{tmp_path / 'c'}")
    (tmp_path / "c" / "test_batch").write_bytes(b"garbage")
    with pytest.raises(ScaleSearchError, match="cifar10: cannot read .*test_batch"):
        load_data(f"cifar10:{tmp_path / 'c'}")


# --- image folders: see test_folder.py ------------------------------------------


@pytest.mark.parametrize("spec, message", [
    ("foo", r"unknown data 'foo': expected embedded, fashion-mnist-full\[:DIR\], cifar10:PATH, synthetic\[:N\] or an image folder"),
    ("", "unknown data ''"),
    ("embedded:x", "unknown data 'embedded:x'"),
    ("synthetic:abc", "synthetic:abc: N must be a whole number"),
    ("synthetic:5", "at least 10"),
    ("cifar10", "cifar10 needs a path"),
    ("cifar10:/nonexistent/cifar", "cifar10: /nonexistent/cifar is not a directory"),
    ("fashion-mnist-full:/nonexistent/fm", "fashion-mnist-full: /nonexistent/fm not found$"),
])
def test_bad_specs_say_what_was_expected(spec, message):
    with pytest.raises(ScaleSearchError, match=message) as err:
        load_data(spec)
    assert "\n" not in str(err.value)


def test_missing_debian_package_names_it(monkeypatch, tmp_path):
    monkeypatch.setattr(data, "FASHION_MNIST_DIR", tmp_path / "absent")
    with pytest.raises(ScaleSearchError, match="install the Debian package dataset-fashion-mnist or give fashion-mnist-full:DIR"):
        load_data("fashion-mnist-full")


def test_a_file_is_not_data(tmp_path):
    (tmp_path / "x.npz").write_bytes(b"")
    with pytest.raises(ScaleSearchError, match="is a file; expected embedded"):
        load_data(str(tmp_path / "x.npz"))


def test_dataset_rejects_inconsistent_tensors():
    ds = load_data("synthetic:10")
    with pytest.raises(ScaleSearchError, match="must be uint8"):
        replace(ds, train_x=ds.train_x.float())
    with pytest.raises(ScaleSearchError, match="val images are"):
        replace(ds, val_x=torch.zeros(len(ds.val_y), 3, 16, 16, dtype=torch.uint8))


# --- DeviceData -----------------------------------------------------------------------

CPU = torch.device("cpu")


def test_batches_have_the_right_shape_dtype_and_layout(embedded):
    dd = DeviceData(subset(embedded, 300, 100, seed=0), CPU)
    batches = list(dd.train_batches(128, 40, torch.Generator().manual_seed(0)))
    assert [len(y) for _, y in batches] == [128, 128, 44]  # nothing dropped
    x, y = batches[0]
    assert x.shape == (128, 1, 40, 40) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert x.is_contiguous(memory_format=torch.channels_last)
    assert abs(x.mean()) < 0.3 and 0.7 < x.std() < 1.3  # normalised (padding pulls the mean down a bit)
    vx, vy = next(dd.val_batches(64, 28))
    assert vx.shape == (64, 1, 28, 28) and vy.equal(dd.val_y[:64])
    assert [len(y) for _, y in dd.val_batches(64, 28)] == [64, 36]


def test_channels_last_on_three_channels_and_off():
    ds = load_data("synthetic:20")
    rgb = replace(ds, train_x=ds.train_x.repeat(1, 3, 1, 1), val_x=ds.val_x.repeat(1, 3, 1, 1))
    x, _ = next(DeviceData(rgb, CPU).train_batches(8, 24, torch.Generator().manual_seed(0)))
    assert x.shape == (8, 3, 24, 24) and x.is_contiguous(memory_format=torch.channels_last)
    x, _ = next(DeviceData(rgb, CPU, channels_last=False).val_batches(8, 12))
    assert x.shape == (8, 3, 12, 12) and x.is_contiguous()


def test_val_batches_are_the_normalised_images():
    ds = load_data("synthetic:20")
    dd = DeviceData(ds, CPU)
    x, _ = next(dd.val_batches(100, 16))
    expected = (ds.val_x.float() / 255 - dd.mean[0]) / dd.std[0]
    assert torch.allclose(x, expected, atol=1e-5)
    all_train = (ds.train_x.float() / 255 - dd.mean[0]) / dd.std[0]
    assert abs(all_train.mean()) < 1e-5 and abs(all_train.std(unbiased=False) - 1) < 1e-4


def test_train_batches_are_deterministic_per_generator_seed(embedded):
    dd = DeviceData(subset(embedded, 200, 10, seed=0), CPU)

    def epoch(seed: int) -> list[torch.Tensor]:
        return [x for x, _ in dd.train_batches(64, 32, torch.Generator().manual_seed(seed))]

    assert all(a.equal(b) for a, b in zip(epoch(3), epoch(3)))
    assert not epoch(3)[0].equal(epoch(4)[0])


def indexed_dataset(n: int = 200, side: int = 8) -> Dataset:
    """Image i is the constant i + 1: its centre pixel survives any crop and flip."""
    x = (torch.arange(n, dtype=torch.uint8) + 1).view(n, 1, 1, 1).expand(n, 1, side, side).contiguous()
    y = torch.arange(n) % 10
    return Dataset("indexed", x, y, x[:10], y[:10], tuple("abcdefghij"), "test")


def test_every_train_image_comes_once_per_epoch_with_its_label():
    ds = indexed_dataset()
    dd = DeviceData(ds, CPU, channels_last=False)
    for seed in (0, 1):
        seen, labels = [], []
        for x, y in dd.train_batches(64, 8, torch.Generator().manual_seed(seed)):
            pixel = x[:, 0, 4, 4] * dd.std[0] + dd.mean[0]
            seen.append((pixel * 255).round().long() - 1)
            labels.append(y)
        ids, labels = torch.cat(seen), torch.cat(labels)
        assert sorted(ids.tolist()) == list(range(200)) and labels.equal(ids % 10)


def test_augmentation_is_a_padded_crop_and_flip_of_the_image():
    side, n = 16, 64
    image = torch.randint(1, 256, (1, 1, side, side), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    ds = Dataset("one", image.expand(n, 1, side, side).contiguous(), torch.zeros(n, dtype=torch.int64),
                 image, torch.zeros(1, dtype=torch.int64), ("a",), "test")
    dd = DeviceData(ds, CPU, channels_last=False)
    p = dd.pad
    padded = torch.nn.functional.pad(image[0, 0], (p, p, p, p))
    candidates = {}
    for dy in range(2 * p + 1):
        for dx in range(2 * p + 1):
            crop = padded[dy:dy + side, dx:dx + side]
            candidates[(dy, dx, False)], candidates[(dy, dx, True)] = crop, crop.flip(1)
    x, _ = next(dd.train_batches(n, side, torch.Generator().manual_seed(0)))
    raw = ((x[:, 0] * dd.std[0] + dd.mean[0]) * 255).round().to(torch.uint8)
    found = [next((k for k, c in candidates.items() if c.equal(r)), None) for r in raw]
    assert None not in found
    assert len(set(found)) > 10 and {flip for *_, flip in found} == {False, True}
