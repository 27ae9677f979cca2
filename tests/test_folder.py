"""Image folders: the decoded subset and side, parallel decoding, bad files, the cache, photo augmentation."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from scalesearch.data import _folder as folder
from scalesearch.proxy import _memory as memory
from scalesearch.data import DeviceData, data_shape, load_data
from scalesearch.errors import ScaleSearchError
from cli_helpers import assert_user_error, run_cli

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def cache_home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "scalesearch"


class Recorder(folder.Report):
    def __init__(self) -> None:
        self.total, self.advanced, self.notes = None, 0, []

    def start(self, total: int, what: str) -> None:
        self.total = total

    def advance(self, n: int = 1) -> None:
        self.advanced += n

    def note(self, text: str) -> None:
        self.notes.append(text)


def write_folder(root: Path, per_class: int = 10, size=(40, 30), classes=("cat", "dog", "eel"), suffix=".png") -> Path:
    """Random colour images; the class index sits in the red channel of the top-left pixel."""
    rng = np.random.default_rng(0)
    for k, cls in enumerate(classes):
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (size[1], size[0], 3), np.uint8)
            Image.fromarray(pixels).save(root / cls / f"{i:03d}{suffix}")
    return root


def load(root: Path, **kw):
    kw = {"side": 32, "train": None, "val": None, "seed": 0, "report": Recorder()} | kw
    return load_data(str(root), **kw), kw["report"]


def test_decodes_only_the_balanced_subset_at_the_side_asked(tmp_path, monkeypatch, cache_home):
    root = write_folder(tmp_path / "pets")
    (root / "dog" / "notes.txt").write_text("not an image")
    (root / ".hidden").mkdir()
    calls = []
    real = folder.decode_image
    monkeypatch.setattr(folder, "decode_image", lambda path, side: calls.append(path) or real(path, side))
    ds, report = load(root, side=48, train=9, val=3)
    assert ds.classes == ("cat", "dog", "eel") and ds.name == "pets" and ds.source == str(root)
    assert ds.train_x.shape == (9, 3, 48, 48) and ds.val_x.shape == (3, 3, 48, 48) and ds.train_x.dtype == torch.uint8
    assert torch.bincount(ds.train_y).tolist() == [3, 3, 3] and torch.bincount(ds.val_y).tolist() == [1, 1, 1]
    assert len(calls) == 12 and report.total == report.advanced == 12  # 30 images in the folder
    assert ds.augment == "pad-crop"  # 30 px images are small
    assert len(set(calls)) == 12  # val and train never share a file
    assert any("MiB" in n and str(cache_home) in n for n in report.notes)  # the user sees the cache and its size
    other, _ = load(root, side=48, train=9, val=3, seed=1)
    assert not other.train_x.equal(ds.train_x)


def test_data_shape_lists_a_folder_without_decoding_it(tmp_path, monkeypatch):
    root = write_folder(tmp_path / "pets", per_class=2)
    monkeypatch.setattr(folder, "decode_image", None)  # any decoding would fail
    assert data_shape(str(root)) == (3, 3)
    assert data_shape("embedded") == (10, 1) and data_shape("synthetic:20") == (10, 1)
    with pytest.raises(ScaleSearchError, match="only one class"):
        data_shape(str(write_folder(tmp_path / "one", per_class=2, classes=("a",))))


def test_whole_folder_at_the_default_side(tmp_path):
    ds, _ = load(write_folder(tmp_path / "pets"), side=None)
    assert ds.train_x.shape == (24, 3, 64, 64) and ds.val_x.shape == (6, 3, 64, 64)  # 20% of each class to val


def test_native_resolution_centre_square_aspect_kept(tmp_path):
    root = tmp_path / "f"
    rng = np.random.default_rng(1)
    images = {}
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        images[cls] = rng.integers(0, 256, (96, 128, 3), np.uint8)  # landscape, 128 × 96
        Image.fromarray(images[cls]).save(root / cls / "x.png")
        Image.fromarray(images[cls]).save(root / cls / "y.png")
    ds, _ = load(root, side=96)
    for x, y in zip(ds.train_x, ds.train_y):  # at its native side: the exact centre 96 × 96, no blur, no stretch
        expected = images["ab"[y]][:, 16:112].transpose(2, 0, 1)
        assert np.array_equal(x.numpy(), expected)


def test_modes_become_rgb_and_transparency_white(tmp_path):
    root = tmp_path / "modes"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    Image.new("L", (20, 20), 100).save(root / "a" / "grey.png")
    Image.new("RGBA", (20, 20), (255, 0, 0, 0)).save(root / "a" / "clear.png")
    Image.new("P", (20, 20), 3).save(root / "a" / "palette.gif")
    Image.fromarray(np.full((20, 20), 65535, np.uint16)).save(root / "b" / "deep.png")
    Image.new("CMYK", (20, 20), (0, 255, 255, 0)).save(root / "b" / "cmyk.jpg")
    Image.new("LA", (20, 20), (30, 255)).save(root / "b" / "greyalpha.png")
    ds, _ = load(root, side=8)
    pixels = {tuple(x[:, 4, 4].tolist()) for x in torch.cat([ds.train_x, ds.val_x])}
    assert (100, 100, 100) in pixels and (255, 255, 255) in pixels and (30, 30, 30) in pixels
    assert any(r > 200 and g < 60 and b < 60 for r, g, b in pixels)  # the CMYK red
    assert ds.in_channels == 3 and len(pixels) == 5  # 16-bit white is white, as the clear pixel


def test_unreadable_files_are_skipped_named_and_replaced(tmp_path, caplog, monkeypatch):
    root = write_folder(tmp_path / "pets", per_class=6, classes=("cat", "dog"))
    for name in ("000.png", "001.png", "002.png", "003.png"):  # 003 is cat's one val image
        (root / "cat" / name).write_bytes(b"not a png")
    (root / "dog" / "000.png").write_bytes((root / "dog" / "001.png").read_bytes()[:60])  # truncated
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)  # Pillow refuses images over twice this
    Image.new("RGB", (100, 100)).save(root / "dog" / "bomb.png")
    with caplog.at_level(logging.WARNING):
        ds, report = load(root, side=16)
    assert "skipped 6 unreadable image(s)" in caplog.text and "and 1 more" in caplog.text
    assert "UnidentifiedImageError" in caplog.text
    assert torch.bincount(ds.train_y).tolist() == [2, 4] and ds.val_y.tolist() == [1]
    assert any("6 unreadable skipped" in n for n in report.notes)
    bomb = folder.decode_image  # named as such when picked
    with pytest.raises(Image.DecompressionBombError):
        bomb(str(root / "dog" / "bomb.png"), 16)
    # A picked unreadable file gives its slot to the next file of its class: still 2 cats.
    ds, _ = load(root, side=16, train=4, val=2)
    assert torch.bincount(ds.train_y).tolist() == [2, 2] and ds.val_y.tolist() == [1]


def test_a_class_without_readable_images_is_one_line_and_writes_nothing(tmp_path, cache_home):
    root = write_folder(tmp_path / "pets", per_class=3, classes=("cat", "dog"))
    for p in (root / "cat").iterdir():
        p.write_bytes(b"junk")
    with pytest.raises(ScaleSearchError, match="class 'cat' has no readable train image") as err:
        load(root, side=16)
    assert "\n" not in str(err.value)
    assert not cache_home.exists() or not any(cache_home.iterdir())


@pytest.mark.parametrize("classes", [[], ["only"]])
def test_needs_two_classes_with_images(tmp_path, classes):
    (tmp_path / "d" / "empty").mkdir(parents=True)
    for cls in classes:
        (tmp_path / "d" / cls).mkdir()
        Image.new("RGB", (8, 8)).save(tmp_path / "d" / cls / "a.png")
    with pytest.raises(ScaleSearchError, match="has (no|only one) class sub-folder with images"):
        load(tmp_path / "d")


def test_cache_is_used_and_follows_the_files(tmp_path, monkeypatch, cache_home):
    root = write_folder(tmp_path / "pets", per_class=5, classes=("cat", "dog"))
    ds, _ = load(root, side=24, train=6, val=2)
    assert len(list(cache_home.glob("imagefolder-*.npz"))) == 1 and not list(cache_home.glob("*.tmp"))

    def no_decoding(*args):
        raise AssertionError("decoded again instead of using the cache")

    monkeypatch.setattr(folder, "_decode", no_decoding)
    again, report = load(root, side=24, train=6, val=2)
    assert again.train_x.equal(ds.train_x) and again.val_y.equal(ds.val_y) and again.augment == ds.augment
    assert any("from cache" in n and "MiB" in n for n in report.notes)
    for changed in ({"side": 32}, {"train": 5}):  # another side or subset is decoded anew
        with pytest.raises(AssertionError, match="decoded again"):
            load(root, **{"side": 24, "train": 6, "val": 2} | changed)
    for p in (root / "cat").iterdir():  # a picked file that changed is decoded anew
        Image.new("RGB", (8, 8), 7).save(p)
    with pytest.raises(AssertionError, match="decoded again"):
        load(root, side=24, train=6, val=2)


def test_a_read_only_cache_only_warns(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file"))
    (tmp_path / "file").write_text("not a folder")
    with caplog.at_level(logging.WARNING):
        ds, _ = load(write_folder(tmp_path / "pets", per_class=3, classes=("a", "b")), side=8)
    assert len(ds.train_y) == 4 and "cannot cache" in caplog.text


def test_photos_get_random_resized_crops_and_a_centre_crop_for_val(tmp_path):
    root = write_folder(tmp_path / "photos", per_class=3, size=(200, 150), classes=("a", "b"), suffix=".jpg")
    ds, report = load(root, side=64)
    assert ds.augment == "random-resized-crop" and any("median native side 150 px" in n for n in report.notes)
    dd = DeviceData(ds, CPU, channels_last=False)
    epoch = lambda seed: torch.cat([x for x, _ in dd.train_batches(4, 40, torch.Generator().manual_seed(seed))])  # noqa: E731
    assert epoch(0).shape == (4, 3, 40, 40) and epoch(0).equal(epoch(0)) and not epoch(0).equal(epoch(1))
    # Val: the centre 7/8 of the image (56 of 64 px), then resized.
    vx, _ = next(dd.val_batches(8, 56))
    raw = ((vx * torch.tensor(dd.std).view(1, 3, 1, 1) + torch.tensor(dd.mean).view(1, 3, 1, 1)) * 255).round()
    assert torch.allclose(raw, ds.val_x[:, :, 4:60, 4:60].float(), atol=1)


def test_a_full_random_resized_crop_is_the_image_or_its_mirror():
    x = torch.rand(2, 3, 16, 16)
    dd = DeviceData.__new__(DeviceData)
    draws = torch.tensor([[1.0, 0.5, 0.5, 0.5]] * 2)  # the whole area, square, centred
    out = dd._resized_crop_flip(x, draws, torch.tensor([False, True]), 16)
    assert torch.allclose(out[0], x[0], atol=1e-5) and torch.allclose(out[1], x[1].flip(-1), atol=1e-5)
    corner = torch.zeros(1, 3, 16, 16)
    corner[..., :8, :8] = 1
    quarter = dd._resized_crop_flip(corner, torch.tensor([[0.0, 0.5, 0.0, 0.0]]), torch.tensor([False]), 16)
    assert torch.allclose(quarter[..., :15, :15], torch.ones(()))  # 25% of the area at the top left, grown to the whole side
    # Shrinking is antialiased: the whole of a 16 px image at 8 px is its antialiased resize.
    small = dd._resized_crop_flip(x[:1], draws[:1], torch.tensor([False]), 8)
    expected = torch.nn.functional.interpolate(x[:1], size=(8, 8), mode="bilinear", antialias=True)
    assert torch.allclose(small, expected, atol=1e-5)


def test_the_cli_says_what_is_wrong_with_a_folder_in_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.jpg").write_bytes(b"")
    for data, message in ((tmp_path / "empty", "has no class sub-folder with images"), (tmp_path / "file.jpg", "is a file")):
        assert_user_error(run_cli(capsys, "run", "--base", "tiny-mbconv", "--data", data), message)


def test_the_default_report_draws_on_stderr(tmp_path, capsys):
    load_data(str(write_folder(tmp_path / "pets", per_class=3, classes=("a", "b"))), side=8)
    err = capsys.readouterr().err
    assert "decoded 4 train + 2 val images at 8 px" in err and "MiB" in err


def test_a_subset_larger_than_memory_is_refused_before_anything_is_allocated(tmp_path, monkeypatch, capsys, cache_home):
    """images × 3 × side² is checked against the available memory before the array exists: one line, exit 2."""
    root = write_folder(tmp_path / "photos", per_class=4)
    monkeypatch.setattr(folder, "available_memory", lambda: 2 * 12 * 3 * 64 * 64 - 1)  # half of it: just under 12 images
    allocated, real = [], folder._Split.allocate
    monkeypatch.setattr(folder._Split, "allocate", lambda self, side: (allocated.append(side), real(self, side)))
    with pytest.raises(ScaleSearchError, match=r"decoding 12 images at 64 px .* more than half the 0.3 MiB of memory available"):
        load(root, side=64)
    assert not allocated
    load(root, side=32)  # a quarter of the bytes fits
    assert allocated == [32, 32]
    monkeypatch.setattr(folder, "available_memory", lambda: 1000)
    # training would not fit either (scalesearch.proxy.require_training_memory refuses that first); here the decoding is what is checked
    monkeypatch.setattr(memory, "available_bytes", lambda device: (2**40, "of memory available"))
    r = run_cli(capsys, "run", "--base", "tiny-mbconv", "--data", root, "--results-dir", tmp_path / "r")
    last = r.err.rstrip().splitlines()[-1]  # after the notes that the folder holds fewer images than asked for
    assert r.code == 2 and "Traceback" not in r.err and last.startswith("scalesearch: error: decoding"), r.err
    assert "memory available; use fewer --train/--val images" in last and not (tmp_path / "r").exists()


def test_synthetic_data_beyond_memory_is_refused(monkeypatch):
    monkeypatch.setattr(folder, "available_memory", lambda: 10**6)
    with pytest.raises(ScaleSearchError, match="synthetic:1000000 needs"):
        load_data("synthetic:1000000")
