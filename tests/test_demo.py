"""`zoo demo` over the real `checkpoints_manifest.json` and the real checkpoints (no fakes): the first command a user runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from zoo.cli.main import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_demo_runs_every_manifest_checkpoint(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("ZOO_MANIFEST", raising=False)
    monkeypatch.delenv("ZOO_CHECKPOINTS", raising=False)
    monkeypatch.delenv("ZOO_DATA", raising=False)  # the demo needs no data
    names = sorted(json.loads((ROOT / "checkpoints_manifest.json").read_text())["checkpoints"])
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out)]) == 0
    assert sorted(p.stem for p in out.glob("*.png")) == names
    rows = [r for r in (out / "metrics.md").read_text().splitlines() if r.startswith("| ") and "---" not in r][1:]
    assert sorted(r.split(" | ")[0].strip("| ") for r in rows) == names
    for r in rows:  # every row says whether the model beats its floor on its sample
        assert "above floor" in r or "below floor" in r
    for n in names:
        img = np.asarray(Image.open(out / f"{n}.png"))
        assert img.ndim == 3 and img.shape[1] >= 4 * 64 and img.std() > 5, f"{n}.png looks empty"
    assert main(["demo", "-o", str(out)]) == 2  # no overwrite without --overwrite
    assert "--overwrite" in capsys.readouterr().err
