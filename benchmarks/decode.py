"""Image-folder decoding (issue #14): throughput and peak memory at a 128 px proxy.

A folder of 20,000 generated 320 × 240 JPEGs (10 classes; smooth random colour
fields with noise, about 15 kB each) is written to a temporary directory, then
each row runs in a fresh process (its own peak RSS and a cold cache directory):
decode a class-balanced train + val subset at 128 px with
:func:`scalesearch.data.load_data` (threads, one per core), then load the same
subset again from the cache. Peak RSS is the process's maximum resident set;
"above imports" subtracts what the process held before decoding (torch, numpy,
Pillow). The images themselves take n × 3 × 128² bytes.

    .venv/bin/python -m benchmarks.decode [--quick]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from .common import console, isolated, peak_rss_mb, section, table

SIDE = 128
CLASSES = 10
W, H = 320, 240


def make_folder(root: Path, images: int, seed: int = 0) -> Path:
    from PIL import Image

    rng = np.random.default_rng(seed)
    for k in range(CLASSES):
        (root / f"class{k}").mkdir(parents=True)
    for i in range(images):
        field = Image.fromarray(rng.integers(0, 256, (6, 8, 3), np.uint8)).resize((W, H), Image.Resampling.BICUBIC)
        pixels = np.asarray(field, np.int16) + rng.integers(-8, 9, (H, W, 3), dtype=np.int16)
        Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(root / f"class{i % CLASSES}" / f"{i:05d}.jpg",
                                                                     quality=85)
    return root


def measure(root: str, train: int, val: int, cache: str) -> dict[str, float]:
    """In a fresh process: decode (cold cache), then load from the cache; times and peak RSS."""
    os.environ["XDG_CACHE_HOME"] = cache
    from scalesearch.data import _folder as folder
    from scalesearch.data import load_data

    before = peak_rss_mb()
    start = time.perf_counter()
    ds = load_data(root, side=SIDE, train=train, val=val, seed=0, report=folder.Report())
    decode_s = time.perf_counter() - start
    peak = peak_rss_mb()
    n = len(ds.train_y) + len(ds.val_y)
    del ds
    start = time.perf_counter()
    load_data(root, side=SIDE, train=train, val=val, seed=0, report=folder.Report())
    cached_s = time.perf_counter() - start
    cache_mb = sum(p.stat().st_size for p in Path(cache).rglob("*.npz")) / 2**20
    return {"n": n, "decode_s": decode_s, "cached_s": cached_s, "before": before, "peak": peak, "cache_mb": cache_mb,
            "threads": min(32, os.cpu_count() or 1)}


def run(quick: bool = False, device: str = "cpu") -> str:
    images = 4000 if quick else 20_000
    subsets = [(1200, 300), (4800, 1200), (images * 4 // 5, images // 5)]
    rows = []
    with tempfile.TemporaryDirectory(prefix="scalesearch-decode-") as tmp:
        start = time.perf_counter()
        root = make_folder(Path(tmp) / "photos", images)
        mb = sum(p.stat().st_size for p in root.rglob("*.jpg")) / 2**20
        console.log(f"wrote {images:,} JPEGs ({mb:,.0f} MiB) in {time.perf_counter() - start:.0f} s")
        for k, (train, val) in enumerate(subsets):
            r = isolated(measure, str(root), train, val, f"{tmp}/cache{k}")
            console.log(r)
            rows.append([f"{r['n']:,}", f"{r['n'] / r['decode_s']:,.0f}", f"{r['decode_s']:.1f}",
                         f"{r['peak']:,.0f}", f"{r['peak'] - r['before']:,.0f}",
                         f"{r['n'] * 3 * SIDE * SIDE / 2**20:,.0f}", f"{r['cache_mb']:,.0f}", f"{r['cached_s']:.1f}"])
    body = table(["images decoded", "images/s", "decode (s)", "peak RSS (MiB)", "above imports (MiB)",
                  "images' own size (MiB)", "cache file (MiB)", "from cache (s)"], rows)
    note = (f"Folder: {images:,} JPEGs of {W} × {H} px ({mb:,.0f} MiB), {CLASSES} classes; decoded at {SIDE} px "
            f"(centre square) with {r['threads']} threads; train + val subsets as a search asks for them.")
    return section("Image-folder decoding at 128 px", device, body, note)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4,000 images instead of 20,000")
    print(run(parser.parse_args().quick))
