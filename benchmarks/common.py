"""Helpers shared by the benchmarks: timing, the machine line, markdown tables, isolated runs."""
from __future__ import annotations

import multiprocessing
import os
import resource
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd

import torch
from rich.console import Console

from scalesearch.arch._latency import cpu_model
from scalesearch.device import usable_cores

console = Console(stderr=True, log_path=False)  # progress goes to stderr; stdout carries only the markdown


def best_of(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Fastest wall time in s of `repeats` calls of `fn`, and its last result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def machine_line(device: str | torch.device = "cpu") -> str:
    """One line naming where the figures come from, load included: they are only comparable on the same machine."""
    device = torch.device(device)
    usable = usable_cores()
    # The vector ISA torch dispatches to: hosts all named "AMD EPYC" gave timm's B0 at 32 px 561 img/s on
    # one and 160-180 on another (AVX2), so figures compare only within one host.
    parts = [f"CPU {cpu_model()} ({torch.backends.cpu.get_cpu_capability()})", f"{os.cpu_count()} cores ({usable} usable)",
             f"load average {os.getloadavg()[0]:.1f}", f"torch {torch.__version__}", f"{torch.get_num_threads()} threads"]
    if device.type == "cuda":
        parts.append(f"device {torch.cuda.get_device_name(device)}")
    else:
        parts.append("device cpu")
    return "Machine: " + ", ".join(parts)


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def isolated(fn: Callable[..., Any], *args: Any) -> Any:
    """`fn(*args)` in a fresh process, so its peak memory and warm caches are its own."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(fn, args)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        return f"{v:,.1f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def section(title: str, device: str | torch.device, body: str, note: str = "") -> str:
    """A benchmark's markdown: heading, machine line, table and an optional note."""
    parts = [f"### {title}", "", machine_line(device), "", body]
    if note:
        parts += ["", note]
    return "\n".join(parts) + "\n"


def append_runs(path: Path, todo: list, one_run: Callable[[Any], dict], jobs: int, line: Callable[[dict], str],
                have: int) -> pd.DataFrame:
    """Train `todo` with `one_run`, `jobs` at a time, appending each row to the CSV at `path` as it comes
    (so the same command resumes), and logging `line(row)`; every row of the file."""
    console.log(f"{len(todo)} proxy runs to train ({have} already in {path})")
    path.parent.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(jobs) as pool:
        for i, row in enumerate(pool.map(one_run, todo), 1):
            pd.DataFrame([row]).to_csv(path, mode="a", header=not path.exists() or path.stat().st_size == 0, index=False)
            console.log(f"{i}/{len(todo)} {line(row)}")
    return pd.read_csv(path)


def option_value(text: str):
    """A ``--set`` value as the command line would give it: a number where it reads as one."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def run_changes(args: list[str]) -> tuple[dict, list[str]]:
    """The leading ``--set KEY=VALUE`` pairs of `args` (run options, as the command line's) and the rest."""
    changes = {}
    while args[:1] == ["--set"] and len(args) > 1:
        key, _, value = args[1].partition("=")
        changes[key] = option_value(value)
        args = args[2:]
    return changes, args


def changes_folder(changes: dict | None) -> str:
    """A folder name for runs with changed options (``lr-0.008-lr_scaling-width``); empty for none."""
    return "-".join(f"{k}-{v}" for k, v in sorted((changes or {}).items()))
