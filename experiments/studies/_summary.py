"""Shared by the study scripts: write a study's summary.json + summary.md atomically and print the table."""

from __future__ import annotations

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
