"""Run the benchmark suite and print its markdown tables.

    .venv/bin/python -m benchmarks [--quick] [--only NAME ...] [--device cpu|cuda] [--epochs N] [--out FILE]
    .venv/bin/python benchmarks/run.py ...

Every benchmark is a module here with ``run(quick, device) -> str`` (markdown),
plus any of the further options (``epochs``) it takes;
add a new one by adding its name to BENCHMARKS.
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import sys
from pathlib import Path

import torch

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "benchmarks"

BENCHMARKS = ["cost_model", "throughput", "loader", "storage_overhead", "end_to_end", "pg_restart", "latency",
              "surface", "calibration", "allocation", "proxy_design", "scores", "planted", "compare"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and smaller runs: a smoke test, noisier figures")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, metavar="NAME", help=f"run only these: {', '.join(BENCHMARKS)}")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where to train (default cpu)")
    parser.add_argument("--epochs", type=int, help="proxy epochs for end_to_end (default: the search space's)")
    parser.add_argument("--out", type=Path, help="also append the markdown to this file")
    args = parser.parse_args(argv)
    if args.epochs is not None and args.epochs < 1:
        parser.error(f"--epochs must be >= 1, got {args.epochs}")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device on this machine")
    for name in args.only or BENCHMARKS:
        run = importlib.import_module(f"benchmarks.{name}").run
        # Options beyond quick and device go to the benchmarks whose run() names them.
        extra = {k: v for k, v in {"epochs": args.epochs}.items() if k in inspect.signature(run).parameters}
        markdown = run(quick=args.quick, device=args.device, **extra)
        print(markdown, flush=True)
        if args.out:
            with args.out.open("a", encoding="utf-8") as f:
                f.write(markdown + "\n")


if __name__ == "__main__":
    main()
