"""Shared by the study scripts: write a study's summary.json + summary.md atomically and print the table."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from zoo.utils.files import atomic_write


def write_summary(out: Path, info: dict, md: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(out / "summary.json", overwrite=True) as tmp:
        tmp.write_text(json.dumps(info, indent=1))
    with atomic_write(out / "summary.md", overwrite=True) as tmp:
        tmp.write_text("\n".join(md))
    print("\n".join(md))


def timing_args(out: str, rounds: int = 15, **extra: dict) -> argparse.ArgumentParser:
    """The arguments of an interleaved timing study: --out, --threads, --rounds, --overwrite (+ ``extra``: name →
    add_argument keywords)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=out)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=rounds)
    ap.add_argument("--overwrite", action="store_true")
    for name, kw in extra.items():
        ap.add_argument(f"--{name}", **kw)
    return ap


def start_timing(a: argparse.Namespace) -> Path:
    """Refuse to replace a study's results unless ``--overwrite``; set the thread count. Returns the out folder."""
    import torch

    out = Path(a.out)
    if (out / "summary.md").exists() and not a.overwrite:
        raise FileExistsError(f"{out / 'summary.md'} exists; pass --overwrite to replace it")
    torch.set_num_threads(a.threads)
    return out


def timing_info(a: argparse.Namespace, rows: list[dict]) -> dict:
    """What a timing study records beside its rows: threads, rounds, torch, load average, date."""
    import time

    import torch

    return {"threads": a.threads, "rounds": a.rounds, "torch": torch.__version__,
            "loadavg": Path("/proc/loadavg").read_text().split()[:3],
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "rows": rows}


def write_timing(out: Path, info: dict, title: str, what: str, note: str, header: list[str], lines: list[str],
                 script: str) -> None:
    """summary.md of a timing study: the title, one line of conditions (``what``, then threads, rounds, date, load,
    torch) and ``note``, the table (``header`` cells, one row per ``lines`` entry), the command that reproduces it."""
    md = [f"# {title}", "",
          f"{what}: {info['threads']} thread(s), {info['rounds']} interleaved rounds, {info['date']}, load "
          f"{' '.join(info['loadavg'])}, torch {info['torch']}. {note}", "",
          "| " + " | ".join(header) + " |", "|" + "---|" * len(header), *lines, "",
          f"Reproduce: `OMP_NUM_THREADS=1 python experiments/studies/{script} --threads 1 --overwrite`", ""]
    write_summary(out, info, md)


def interleaved(cells: list, run, rounds: int, seed: int = 0) -> dict:
    """Seconds of ``run(cell)`` per cell, each cell once per round in a shuffled order (load drift hits all alike)."""
    import random
    import time

    rng, times = random.Random(seed), {c: [] for c in cells}
    for _ in range(rounds):
        order = list(cells)
        rng.shuffle(order)
        for c in order:
            t = time.perf_counter()
            run(c)
            times[c].append(time.perf_counter() - t)
    return times
