"""Export folders for ``lorun-sr-x2`` / ``lorun-sr-x3`` from the ``lorun-sr-x4`` run: one ×2/×3/×4 network, three names.

LoRun-SR takes the scale as an input (data step and hyper-network), so the phase-2 run trained as ``lorun-sr-x4``
on ×2/×3/×4 batches is also the ×2 and ×3 model; only ``config.json`` (model name, default ``scale``) differs.
Then ``zoo export runs/lorun-sr-x2/export --name lorun-sr-x2`` publishes it like any run.

    python experiments/sr_scale_aliases.py [runs/lorun-sr-x4/export]
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path


def drop_kernel_buffer(folder: Path) -> None:
    """Runs trained before the default kernel became a non-persistent buffer saved ``physics.kernel`` (derived from the
    scale, not a weight): remove it so the weights load at every scale."""
    from safetensors.torch import load_file, save_file

    f = folder / "model.safetensors"
    sd = load_file(str(f))
    if "physics.kernel" in sd:
        del sd["physics.kernel"]
        tmp = f.with_suffix(".tmp")
        save_file(sd, str(tmp))
        tmp.replace(f)
        print(f"{f}: dropped the physics.kernel buffer")


def main(argv: list[str]) -> int:
    src = Path(argv[0] if argv else "runs/lorun-sr-x4/export")
    for run in (src, src.parent.parent / "block9-sr-x4" / "export"):
        if run.is_dir():
            drop_kernel_buffer(run)
    cfg = json.loads((src / "config.json").read_text())
    if cfg.get("model") != "lorun-sr-x4":
        raise SystemExit(f"{src} holds {cfg.get('model')!r}, not lorun-sr-x4")
    for s in (2, 3):
        dst = src.parent.parent / f"lorun-sr-x{s}" / "export"
        if (dst / "model.safetensors").exists():
            raise SystemExit(f"{dst} exists: remove it first (nothing is overwritten)")
        dst.mkdir(parents=True)
        for f in src.iterdir():
            if f.name != "config.json":
                shutil.copy2(f, dst / f.name)
        new = {**cfg, "model": f"lorun-sr-x{s}", "config": {**cfg.get("config", {}), "scale": s}}
        (dst / "config.json").write_text(json.dumps(new, indent=2) + "\n")
        print(f"{dst}: the lorun-sr-x4 weights with default scale {s}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
