"""Image folders (one sub-folder per class), decoded at the side a search needs.

Only the class-balanced subset that the proxies train and score on is decoded:
a fixed ~20% of each class's sorted files is the val pool, the rest the train
pool, and `train` / `val` images are dealt from them round-robin over classes in
a seeded order. Every image becomes its centre square (aspect kept), resized to
`side` px; threads decode in parallel (Pillow releases the GIL) straight into
one preallocated uint8 array, so memory is the subset's, not the folder's.

An unreadable file (corrupt, not an image, a decompression bomb) is skipped,
named in a warning, and replaced by the next file of its class. The result is
cached under ``$XDG_CACHE_HOME/scalesearch``, keyed by the folder, the side, the
subset and the files' sizes and mtimes, and written atomically.

>>> labels = np.array([0, 0, 0, 1, 1])
>>> labels[balanced_order(labels, seed=0)].tolist()  # every class's 1st pick, then every class's 2nd, ...
[0, 1, 0, 1, 0]
"""
from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from collections import defaultdict, deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ScaleSearchError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
VAL_FRACTION = 0.2
CACHE_VERSION = 2  # bump when the cached format or the decoding changes
# Colour images whose median shorter side is at least this are photos: they get
# random-resized crops on the device; smaller or grey ones keep pad-and-crop.
PHOTO_SIDE = 128
MAX_UPSCALE = 4  # beyond this factor from the median native side to the decoded side, decoding warns
GREY_MODES = {"1", "L", "LA", "I", "F", "I;16", "I;16B", "I;16L", "I;16N"}


class Report:
    """How decoding talks to its caller; this one is silent. See :class:`RichReport`."""

    def start(self, total: int, what: str) -> None: ...
    def advance(self, n: int = 1) -> None: ...
    def stop(self) -> None: ...
    def note(self, text: str) -> None: ...


class RichReport(Report):
    """A rich progress bar and one-line notes on stderr (what the CLI shows)."""

    def __init__(self) -> None:
        from rich.console import Console
        self.console = Console(stderr=True)
        self.bar = None

    def start(self, total: int, what: str) -> None:
        if not self.console.is_terminal:  # a log gets the notes only (a bar there is one blank line)
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
        self.bar = Progress(TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                            console=self.console, transient=True)
        self.bar.start()
        self.task = self.bar.add_task(what, total=total)

    def advance(self, n: int = 1) -> None:
        if self.bar:
            self.bar.advance(self.task, n)

    def stop(self) -> None:
        if self.bar:
            self.bar.stop()
            self.bar = None

    def note(self, text: str) -> None:
        self.console.print(text, highlight=False, markup=False, soft_wrap=True)


@dataclass
class Decoded:
    """What :func:`load_folder` returns; :mod:`scalesearch.data` wraps it in a Dataset."""

    arrays: dict[str, np.ndarray]  # train_x, train_y, val_x, val_y, classes
    augment: str  # "pad-crop" or "random-resized-crop"


def balanced_order(labels: np.ndarray, seed: int) -> np.ndarray:
    """Indices of every class's 1st pick (seeded random order), then every class's 2nd, ...

    Any prefix of it is class-balanced to within one image (until small classes run out).
    """
    key = np.random.default_rng(seed).random(len(labels))
    by_class = np.lexsort((key, labels))  # grouped by class, random order inside each
    starts = np.searchsorted(labels[by_class], labels[by_class])  # first position of each class
    rank = np.empty(len(labels), np.int64)
    rank[by_class] = np.arange(len(labels)) - starts
    return np.lexsort((labels, rank))


def load_folder(folder: Path, side: int, train: int | None, val: int | None, seed: int,
                report: Report, workers: int | None = None) -> Decoded:
    """The `train` + `val` subset of `folder` at `side` px (None: the whole split), cached."""
    folder = folder.resolve()
    classes, pools = split_pools(folder)
    splits = {"train": _Split(pools["train"], train, seed), "val": _Split(pools["val"], val, seed + 1)}
    for name, s in splits.items():
        if s.short:
            report.note(f"image folder {folder}: {name} asks for {s.short} images, the folder has "
                        f"{len(s.todo)}; using all of them")
    cache = _cache_path(folder, side, classes, splits)
    if (hit := _read_cache(cache, folder)) is not None:
        report.note(f"image folder {folder}: {_counts(hit.arrays)} at {side} px from cache {cache} ({_mb(cache)})")
        return hit
    decoded = _decode(folder, classes, splits, side, report, workers)
    _write_cache(cache, decoded, report)
    return decoded


def split_pools(folder: Path) -> tuple[list[str], dict[str, list[tuple[int, str]]]]:
    """Class names and the train / val pools of (label, path relative to `folder`)."""
    files: dict[str, list[str]] = {}
    for d in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        images = sorted(str(p.relative_to(folder)) for p in d.rglob("*")
                        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if images:
            files[d.name] = images
        else:
            log.warning("image folder %s: skipping %s, it has no images", folder, d.name)
    if len(files) < 2:
        raise ScaleSearchError(f"data folder {folder} has {'no' if not files else 'only one'} class sub-folder "
                               "with images; expected one sub-folder per class, at least 2")
    pools: dict[str, list[tuple[int, str]]] = {"train": [], "val": []}
    for label, paths in enumerate(files.values()):
        val_idx = _val_positions(len(paths))
        for i, p in enumerate(paths):
            pools["val" if i in val_idx else "train"].append((label, p))
    return list(files), pools


def _val_positions(n: int) -> set[int]:
    """A fixed ~20% of a class's sorted files, spread evenly; at least one when n >= 2."""
    k = min(n - 1, max(1, round(n * VAL_FRACTION))) if n >= 2 else 0
    return {int((j + 0.5) * n / k) for j in range(k)}


class _Split:
    """One split: the balanced pick to decode, per-class spares for unreadable files, and the results."""

    def __init__(self, pool: list[tuple[int, str]], n: int | None, seed: int):
        order = [pool[i] for i in balanced_order(np.array([label for label, _ in pool], np.int64), seed)]
        n = len(pool) if n is None else max(0, n)
        self.short = n if n > len(pool) else 0  # asked for more than there is
        self.todo = order[:n]
        self.spares: dict[int, deque[str]] = defaultdict(deque)
        for label, rel in order[n:]:
            self.spares[label].append(rel)
        self.skipped: list[tuple[str, str]] = []
        self.natives: list[tuple[int, bool]] = []  # (native shorter side, colour?) of each decoded image

    def allocate(self, side: int) -> None:
        n = len(self.todo)
        self.x = np.zeros((n, 3, side, side), np.uint8)  # the only image memory: the subset's
        self.y = np.full(n, -1, np.int64)  # -1 marks a slot whose class ran out of readable files
        self.files = np.full(n, "", dtype=object)
        self.stamps = np.zeros((n, 2), np.int64)

    def settle(self, f: Future, slot: int, label: int, rel: str) -> str | None:
        """Store a finished decode; for a failed one, return the next spare of its class (if any)."""
        try:
            self.x[slot], native, colour, self.stamps[slot] = f.result()
        except Exception as e:  # corrupt files raise nearly anything from Pillow's plugins
            self.skipped.append((rel, f"{type(e).__name__}: {e}"))
            spares = self.spares.get(label)
            return spares.popleft() if spares else None
        self.y[slot], self.files[slot] = label, rel
        self.natives.append((native, colour))
        return None

    def arrays(self, name: str) -> dict[str, np.ndarray]:
        keep = self.y >= 0
        x = self.x if keep.all() else self.x[keep]  # copies only when a class ran out
        return {f"{name}_x": x, f"{name}_y": self.y[keep], f"{name}_files": self.files[keep].astype(str),
                f"{name}_stamps": self.stamps[keep]}


# --- decoding -----------------------------------------------------------------

def decode_image(path: str, side: int) -> tuple[np.ndarray, int, bool]:
    """(3 × side × side uint8 centre square, native shorter side, colour?) of one image file."""
    from PIL import Image

    with Image.open(path) as im:  # raises DecompressionBombError on absurd sizes, before decoding
        native, colour = min(im.size), im.mode not in GREY_MODES
        im.draft(None, (side, side))  # JPEG: libjpeg scales by 1/2 … 1/8 while staying >= side
        im = _to_8bit(im)
        w, h = im.size
        s = min(w, h)
        box = ((w - s) / 2, (h - s) / 2, (w + s) / 2, (h + s) / 2)
        # reducing_gap: a cheap box pre-shrink for big images, then the proper filter.
        im = _flatten(im.resize((side, side), Image.Resampling.BICUBIC, box=box, reducing_gap=3.0))
    return np.asarray(im, np.uint8).transpose(2, 0, 1), native, colour


def _decode_file(path: str, side: int) -> tuple[np.ndarray, int, bool, tuple[int, int]]:
    st = os.stat(path)  # before reading: a file changed while decoding misses the cache next time
    return (*decode_image(path, side), (st.st_mtime_ns, st.st_size))


def _to_8bit(im):
    """16-bit and float grey images as 8-bit grey (convert() would clip them to white)."""
    from PIL import Image

    if im.mode in ("I", "F") or im.mode.startswith("I;16"):
        a = np.asarray(im, np.float32)
        return Image.fromarray((a / 257 if a.max() > 255 else a).clip(0, 255).astype(np.uint8))
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        return im.convert("RGBA")  # resized premultiplied, then put on white by _flatten
    return im if im.mode in ("RGB", "L") else im.convert("RGB")


def _flatten(im):
    """RGB, with any transparency composited over white (as viewers show it)."""
    from PIL import Image

    if im.mode == "RGBA":
        return Image.alpha_composite(Image.new("RGBA", im.size, (255, 255, 255, 255)), im).convert("RGB")
    return im if im.mode == "RGB" else im.convert("RGB")


def available_memory() -> int:
    """Bytes the kernel says can be allocated without swapping (MemAvailable), else free pages."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def require_memory(nbytes: int, what: str, advice: str) -> None:
    """Refuse, before allocating, to hold more than half the available memory (training needs the rest)."""
    free = available_memory()
    if nbytes > free / 2:
        raise ScaleSearchError(f"{what} needs {_bytes(nbytes)}, more than half the {_bytes(free)} of memory available; {advice}")


def _decode(folder: Path, classes: list[str], splits: dict[str, _Split], side: int,
            report: Report, workers: int | None) -> Decoded:
    t0 = time.perf_counter()
    n = sum(len(s.todo) for s in splits.values())
    require_memory(n * 3 * side * side, f"decoding {n:,} images at {side} px ({n:,} × 3 × {side}² bytes)",
                   "use fewer --train/--val images or a smaller --proxy-resolution")
    for s in splits.values():
        s.allocate(side)
    report.start(sum(len(s.todo) for s in splits.values()), f"decoding at {side} px")
    try:
        with ThreadPoolExecutor(workers or min(32, os.cpu_count() or 1)) as pool:
            running: dict[Future, tuple[_Split, int, int, str]] = {}

            def submit(s: _Split, slot: int, label: int, rel: str) -> None:
                running[pool.submit(_decode_file, str(folder / rel), side)] = (s, slot, label, rel)

            for s in splits.values():
                for slot, (label, rel) in enumerate(s.todo):
                    submit(s, slot, label, rel)
            while running:
                for f in wait(running, return_when=FIRST_COMPLETED)[0]:
                    s, slot, label, rel = running.pop(f)
                    if (spare := s.settle(f, slot, label, rel)) is not None:
                        submit(s, slot, label, spare)  # same slot: the class keeps its share
                    else:
                        report.advance()
    finally:
        report.stop()
    return _assemble(folder, classes, splits, side, time.perf_counter() - t0, report)


def _assemble(folder: Path, classes: list[str], splits: dict[str, _Split], side: int, seconds: float,
              report: Report) -> Decoded:
    skipped = [x for s in splits.values() for x in s.skipped]
    if skipped:
        names = ", ".join(f"{rel} ({why})" for rel, why in skipped[:5])
        log.warning("image folder %s: skipped %d unreadable image(s): %s%s", folder, len(skipped), names,
                    f" and {len(skipped) - 5} more" if len(skipped) > 5 else "")
    arrays = {"classes": np.array(classes)}
    for name, s in splits.items():
        arrays |= s.arrays(name)
    found = set(arrays["train_y"].tolist())
    if splits["train"].todo and len(found) < len(classes):
        missing = next(c for i, c in enumerate(classes) if i not in found)
        raise ScaleSearchError(f"data folder {folder}: class {missing!r} has no readable train image "
                               f"({len(skipped)} unreadable skipped); fix or remove its files")
    natives = np.array([n for s in splits.values() for n, _ in s.natives])
    colour = np.mean([c for s in splits.values() for _, c in s.natives]) if natives.size else 0
    photos = natives.size and np.median(natives) >= PHOTO_SIDE and colour >= 0.5
    decoded = Decoded(arrays, "random-resized-crop" if photos else "pad-crop")
    median = int(np.median(natives)) if natives.size else 0
    report.note(f"image folder {folder}: decoded {_counts(arrays)} at {side} px in {seconds:.1f} s, "
                f"{len(skipped)} unreadable skipped; median native side {median} px, so {decoded.augment} augmentation"
                + _upscale_warning(median, side))
    return decoded


def _upscale_warning(native: int, side: int) -> str:
    """A warning when images are blown up more than MAX_UPSCALE times: the proxies would judge interpolation, not
    detail (a folder of 1×1 images scores 100% on colour alone)."""
    if not 0 < native * MAX_UPSCALE < side:
        return ""
    return (f"; WARNING: upscaled {side / native:.0f}× to {side} px, so the proxies see interpolated pixels and a "
            f"high score says nothing about detail; images of at least {-(-side // MAX_UPSCALE)} px would")


def _counts(arrays: dict[str, np.ndarray]) -> str:
    return f"{len(arrays['train_y'])} train + {len(arrays['val_y'])} val images"


# --- cache --------------------------------------------------------------------

def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "scalesearch"


def _cache_path(folder: Path, side: int, classes: list[str], splits: dict[str, _Split]) -> Path:
    """Keyed by the folder, side, classes and the picked files with their sizes and mtimes.

    Spares that replaced unreadable files are checked on reading (see _read_cache).
    """
    key = hashlib.sha256(f"v{CACHE_VERSION}\n{folder}\n{side}\n{classes}\n".encode())
    for name, s in splits.items():
        key.update(f"{name} {len(s.todo)}\n".encode())
        for label, rel in s.todo:
            st = (folder / rel).stat()
            key.update(f"{label}\t{rel}\t{st.st_mtime_ns}\t{st.st_size}\n".encode())
    return cache_dir() / f"imagefolder-{key.hexdigest()[:24]}.npz"


def _read_cache(path: Path, folder: Path) -> Decoded | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        augment = str(arrays.pop("augment"))
        for split in ("train", "val"):
            for rel, stamp in zip(arrays[f"{split}_files"], arrays[f"{split}_stamps"]):
                st = (folder / str(rel)).stat()
                if (st.st_mtime_ns, st.st_size) != tuple(stamp):
                    return None
    except FileNotFoundError:  # a decoded file is gone: decode anew
        return None
    except (OSError, KeyError, ValueError) as e:
        log.warning("ignoring unreadable cache %s: %s", path, e)
        return None
    return Decoded(arrays, augment)


def _write_cache(path: Path, decoded: Decoded, report: Report) -> None:
    """Write atomically (temp file + rename) so concurrent runs never read half a file."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as f:
            tmp = f.name
            np.savez(f, augment=np.array(decoded.augment), **decoded.arrays)
        os.replace(tmp, path)
        report.note(f"cached in {path} ({_mb(path)}); delete it to free the space")
    except OSError as e:  # a read-only cache only costs time
        log.warning("cannot cache decoded images in %s: %s", path, e)
        if tmp:
            Path(tmp).unlink(missing_ok=True)


def _mb(path: Path) -> str:
    return _bytes(path.stat().st_size)


def _bytes(n: float) -> str:
    return f"{n / 2**30:,.1f} GiB" if n >= 2**30 else f"{n / 2**20:,.1f} MiB"
