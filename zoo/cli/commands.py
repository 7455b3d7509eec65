"""Sub-commands of ``zoo`` other than the Lightning ones (``fit|validate|test|predict``)."""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

import zoo

__all__ = ["build_parser"]


def _print_table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    print(fmt.format(*header))
    for r in rows:
        print(fmt.format(*[str(c) for c in r]))


# -- list / info ----------------------------------------------------------------------------------
def cmd_list(ns: argparse.Namespace) -> int:
    from zoo.hub.manifest import load_manifest

    have = load_manifest().checkpoints
    names = zoo.list_models(ns.pattern, task=ns.task, pretrained=True if ns.pretrained else None)
    rows = [[n, zoo.get_entry(n).task, zoo.get_entry(n).architecture, "yes" if n in have else "", zoo.get_entry(n).description]
            for n in names]
    _print_table(rows, ["name", "task", "arch", "pretrained", "description"])
    return 0


def cmd_info(ns: argparse.Namespace) -> int:
    from zoo.bench.profile import param_counts
    from zoo.hub.manifest import load_manifest

    e = zoo.get_entry(ns.name)
    net = e.build()
    rec = load_manifest().checkpoints.get(ns.name)
    info = {
        "name": e.name, "task": e.task, "architecture": e.architecture, "description": e.description,
        "paper": e.paper, "licence": e.licence, "default_config": e.default_config,
        "params": {k: v for k, v in param_counts(net).items() if not k.endswith("_M")},
        "pretrained": _record_dict(rec) if rec is not None else None,
    }
    print(json.dumps(info, indent=2, default=str))
    return 0


def _record_dict(rec) -> dict:
    from dataclasses import asdict, is_dataclass

    return asdict(rec) if is_dataclass(rec) else dict(rec)


# -- restore --------------------------------------------------------------------------------------
def cmd_restore(ns: argparse.Namespace) -> int:
    from zoo.bench.protocols import get_protocol, tasks_taking

    out = Path(ns.output)
    if out.exists() and not ns.overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    if not Path(ns.input).is_file():
        raise FileNotFoundError(f"input {ns.input} does not exist")
    # task-specific inputs travel only when given, so each protocol keeps its own defaults
    extra = {k: v for k, v in (("mask", ns.mask), ("flash", ns.flash), ("sigma", ns.sigma), ("adapt", ns.adapt))
             if v is not None}
    if ns.adapt is not None and ns.adapt < 0:
        raise ValueError(f"--adapt takes a number of steps >= 0, got {ns.adapt}")
    task = zoo.get_entry(ns.name).task
    proto = get_protocol(task)
    wrong = sorted(set(extra) - proto.restore_options())
    if wrong:  # the protocols accept **kw, so an option of another task would pass unnoticed
        raise ValueError(f"{ns.name} is a {task!r} model; " + ", ".join(
            f"--{k} is for {'/'.join(tasks_taking(k))} models" for k in wrong) + ": drop it")
    # --weights are the user's own (a fine-tune): loaded without the published sha256, with a warning
    net = zoo.load(ns.name, path=ns.weights, verify=ns.weights is None)
    t = time.perf_counter()
    msg = proto.restore_file(net, ns.input, str(out), overwrite=ns.overwrite, tile=ns.tile, overlap=ns.overlap,
                             **extra)
    print(f"{ns.name}: {msg} in {time.perf_counter() - t:.2f}s → {out}")
    return 0


# -- bench ----------------------------------------------------------------------------------------
def _recipe_model(recipe: str) -> tuple[str, list[str] | None]:
    import yaml

    cfg = yaml.safe_load(Path(recipe).read_text())
    name = cfg["model"]["init_args"]["model"]
    dirs = (cfg.get("data", {}).get("init_args", {}) or {}).get("test_dirs")
    return name, [Path(d).name for d in dirs] if dirs else None


def cmd_bench(ns: argparse.Namespace) -> int:
    from zoo.bench import run_bench

    names = list(ns.names)
    datasets = ns.dataset
    for r in ns.recipe or []:
        n, ds = _recipe_model(r)
        names.append(n)
        datasets = datasets or ds
    if not names:
        raise ValueError("name at least one model (or --recipe)")
    bad = [w for w in ns.weights or [] if "=" not in w]
    if bad:
        raise ValueError(f"--weights takes NAME=PATH, got {bad[0]!r}")
    paths = dict(p.split("=", 1) for p in ns.weights or [])
    if paths and ns.record:
        raise ValueError("--record stores results under the published checkpoints' hashes; your own --weights "
                         "are not those files: export them first (zoo export RUN/export --name NAME), then bench NAME")
    s = run_bench(names, ns.out, datasets=datasets, data_root=ns.data_root, paths=paths, floor=not ns.no_floor,
                  grids=not ns.no_grids, costs=not ns.no_costs, cost_size=ns.cost_size, limit=ns.limit,
                  overwrite=ns.overwrite, adapt=ns.adapt)
    print((Path(ns.out) / "summary.md").read_text())
    if ns.record:
        from zoo.hub.manifest import set_bench
        from zoo.hub.publish import refresh_card

        for n, m in s["models"].items():
            set_bench(n, {"command": s["command"], "protocol": s["protocol"], "environment": s["environment"],
                          "results": m["datasets"], "costs": {k: m.get(k) for k in ("gflops", "latency_s", "weights_mib", "peak_mem_mib", "train_patches_per_s", "cost_protocol")},
                          "params": m["params"]})
            refresh_card(n)
        print(f"recorded bench results of {len(s['models'])} checkpoints in the manifest")
    return 0


# -- export ---------------------------------------------------------------------------------------
def cmd_export(ns: argparse.Namespace) -> int:
    """Turn a training run's export folder into ``checkpoints/<name>/`` + a manifest entry."""
    from zoo.hub.manifest import default_checkpoints_dir, update_entry
    from zoo.hub.publish import refresh_card

    src = Path(ns.run_dir)
    for f in ("model.safetensors", "config.json"):
        if not (src / f).is_file():
            raise FileNotFoundError(f"{src/f} missing: point at a run's export folder (ExportWeights callback)")
    cfg = json.loads((src / "config.json").read_text())
    if cfg.get("model") != ns.name:
        raise ValueError(f"{src} holds weights of {cfg.get('model')!r}, not {ns.name!r}")
    dst = Path(ns.dest) if ns.dest else default_checkpoints_dir() / ns.name
    if (dst / "model.safetensors").exists() and not ns.overwrite:
        raise FileExistsError(f"{dst}/model.safetensors exists; pass --overwrite (only when the new weights are better)")
    dst.mkdir(parents=True, exist_ok=True)
    # check the weights really load into the registered architecture before publishing them
    from safetensors.torch import load_file

    sd = load_file(str(src / "model.safetensors"))
    zoo.create(ns.name, **cfg["config"]).load_state_dict(sd, strict=True)
    from safetensors.torch import save_file

    from zoo.hub.files import atomic_write

    # half precision halves the file; load_state_dict casts back into the float32 network
    dt = getattr(torch, ns.dtype)
    with atomic_write(dst / "model.safetensors", overwrite=True) as tmp:
        save_file({k: (v.to(dt) if v.is_floating_point() else v).contiguous() for k, v in sd.items()},
                  str(tmp), metadata={"stored_dtype": ns.dtype})
    with atomic_write(dst / "config.json", overwrite=True) as tmp:
        tmp.write_text(json.dumps(cfg, indent=2) + "\n")
    curve = json.loads((src / "learning_curve.json").read_text()) if (src / "learning_curve.json").is_file() else []
    if curve:
        with atomic_write(dst / "learning_curve.json", overwrite=True) as tmp:
            tmp.write_text(json.dumps(curve, indent=1) + "\n")
    training = {
        "recipe": ns.recipe or "", "data": ns.data or "", "init": ns.init or "",
        "steps": int(curve[-1]["step"]) if curve else 0, "epochs": int(curve[-1]["epoch"]) + 1 if curve else 0,
        "wall_time_s": float(curve[-1]["wall_s"]) if curve else 0.0,
        "hardware": ns.hardware or f"{platform.machine()} CPU, {torch.get_num_threads()} threads",
        "stored_dtype": ns.dtype,
    }
    if ns.notes:
        training["notes"] = ns.notes
    update_entry(ns.name, dst, training=training)
    refresh_card(ns.name)
    print(f"exported {ns.name} → {dst} and recorded it in the manifest")
    return 0


# -- finetune -------------------------------------------------------------------------------------

def cmd_finetune(ns: argparse.Namespace) -> int:
    """Fine-tune a pretrained checkpoint on a folder of your images (LoRun: adapters only)."""
    from zoo.cli.lightning import run_lightning
    from zoo.hub.manifest import load_manifest

    from zoo.bench.protocols import get_protocol

    e = zoo.get_entry(ns.name)
    proto = get_protocol(e.task)
    rec = load_manifest().checkpoints.get(ns.name)
    if rec is None:
        raise ValueError(f"{ns.name} has no pretrained checkpoint; pretrained: {zoo.list_models(pretrained=True)}")
    folder = Path(ns.data).resolve()
    if not folder.is_dir():
        raise FileNotFoundError(f"--data {folder} is not a folder of images")
    module, data = proto.lightning_module, proto.datamodule
    out = Path(ns.out)
    args = [
        "fit",
        f"--model={module}", f"--model.model={ns.name}", f"--model.model_config={json.dumps(rec.config)}",
        f"--model.init_weights={ns.weights or ns.name}", f"--model.lr={ns.lr}",
        f"--data={data}", *proto.finetune_data_args(str(folder)),
        f"--data.patch={ns.patch}", f"--data.batch_size={ns.batch_size}", f"--data.samples_per_epoch={ns.samples}",
        f"--data.val_images={ns.val_images}",
        f"--trainer.max_epochs={ns.epochs}", f"--trainer.default_root_dir={out}", "--trainer.enable_checkpointing=false",
        f"--trainer.precision={ns.precision}", f"--trainer.accelerator={ns.accelerator}",
        "--trainer.logger=lightning.pytorch.loggers.CSVLogger", f"--trainer.logger.save_dir={out}",
        "--trainer.callbacks=zoo.training.ExportWeights", f"--trainer.callbacks.dirpath={out / 'export'}",
    ]
    if ns.full:
        args.append("--model.freeze_base=false")
    if ns.fast_dev_run:
        args.append("--trainer.fast_dev_run=1")
    run_lightning(args)
    print(f"fine-tuned weights: {out / 'export' / 'model.safetensors'} (load with zoo.load({ns.name!r}, path=...))")
    return 0


# -- demo -----------------------------------------------------------------------------------------
def cmd_demo(ns: argparse.Namespace) -> int:
    """Every pretrained checkpoint restores a built-in sample; before/after PNGs + a metrics table."""
    from PIL import Image

    from zoo.bench.protocols import get_protocol
    from zoo.hub.files import atomic_write
    from zoo.metrics import psnr, ssim
    out = Path(ns.out)
    names = ns.names or zoo.list_models(pretrained=True)
    if not names:
        raise ValueError("no pretrained checkpoints are listed in checkpoints_manifest.json")
    rows = []
    for name in names:
        task = zoo.get_entry(name).task
        proto = get_protocol(task)
        batch = proto.sample()
        x = batch["target"]
        net = zoo.load(name)
        with torch.no_grad():
            inputs = proto.inputs(net, batch)
            t = time.perf_counter()
            y = net(**inputs).float()
            dt = time.perf_counter() - t
            before = proto.floor(net, inputs).float()
        d = out / name
        d.mkdir(parents=True, exist_ok=True)
        for fname, img in (("before.png", before), ("restored.png", y), ("target.png", x)):
            with atomic_write(d / fname, overwrite=ns.overwrite) as tmp:
                Image.fromarray(proto.to_image(img)).save(tmp, format="PNG")
        rows.append([name, task, proto.floor_name, f"{float(psnr(before, x)[0]):.2f}", f"{float(psnr(y, x)[0]):.2f}",
                     f"{float(ssim(before, x)[0]):.4f}", f"{float(ssim(y, x)[0]):.4f}", f"{dt:.2f}"])
    header = ["model", "task", "before", "PSNR before", "PSNR after", "SSIM before", "SSIM after", "seconds"]
    _print_table(rows, header)
    md = "| " + " | ".join(header) + " |\n|" + "---|" * len(header) + "\n" + "".join("| " + " | ".join(r) + " |\n" for r in rows)
    with atomic_write(out / "metrics.md", overwrite=ns.overwrite) as tmp:
        tmp.write_text("Built-in procedural samples (zoo.samples); 'before' = the task's classical floor.\n\n" + md)
    print(f"wrote before/after PNGs and metrics.md to {out}/")
    return 0


# -- parser ---------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="zoo", description="Deep-unfolding restoration model zoo. "
                                "Training: zoo fit|validate|test|predict --config recipes/X.yaml")
    sub = p.add_subparsers(dest="command")

    s = sub.add_parser("list", help="list registered models")
    s.add_argument("pattern", nargs="?", default="*")
    s.add_argument("--task")
    s.add_argument("--pretrained", action="store_true", help="only models with a checkpoint")
    s.set_defaults(func=cmd_list)

    s = sub.add_parser("info", help="metadata, config, parameters and checkpoint record of a model")
    s.add_argument("name")
    s.set_defaults(func=cmd_info)

    s = sub.add_parser("restore", help="restore an image with a pretrained model (tiled)")
    s.add_argument("name")
    s.add_argument("input")
    s.add_argument("-o", "--output", required=True)
    s.add_argument("--weights", help="a checkpoint folder/file instead of the published one")
    s.add_argument("--mask", help="a mask file, for tasks whose operator takes one (CASSI)")
    s.add_argument("--flash", help="flash-guided denoising: the flash image of INPUT (default: INPUT's name with "
                                   "nonflash/ambient replaced by flash)")
    s.add_argument("--sigma", type=float, help="flash-guided denoising: noise level of INPUT in /255 units (default 25)")
    s.add_argument("--adapt", type=int, metavar="STEPS",
                   help="pansharpening / flash: first fine-tune a copy of the model on INPUT alone for STEPS steps "
                        "(target-adaptive: its own reduced pair / recorrupted copies; ~0.1-1 s a step on a CPU)")
    s.add_argument("--tile", type=int, default=264)
    s.add_argument("--overlap", type=int, default=33)
    s.add_argument("--overwrite", action="store_true")
    s.set_defaults(func=cmd_restore)

    s = sub.add_parser("bench", help="benchmark pretrained models (tables, costs, grids)")
    s.add_argument("names", nargs="*")
    s.add_argument("--recipe", action="append", help="bench the checkpoint a recipe trains")
    s.add_argument("--dataset", action="append", help="test set(s), default: the protocol's")
    s.add_argument("--data-root")
    s.add_argument("--out", default="bench-results")
    s.add_argument("--weights", action="append",
                   help="NAME=PATH: bench your own weights of NAME (a run's export folder; loaded unverified)")
    s.add_argument("--limit", type=int, help="first n images per test set (smoke tests)")
    s.add_argument("--cost-size", type=int, default=256)
    s.add_argument("--no-floor", action="store_true")
    s.add_argument("--no-grids", action="store_true")
    s.add_argument("--no-costs", action="store_true")
    s.add_argument("--record", action="store_true", help="store the results in the manifest and model cards")
    s.add_argument("--adapt", type=int, default=0, metavar="STEPS",
                   help="also score every test set after STEPS target-adaptive steps per image (pansharpening, flash)")
    s.add_argument("--overwrite", action="store_true")
    s.set_defaults(func=cmd_bench)

    s = sub.add_parser("export", help="publish a training run's weights into checkpoints/NAME + manifest")
    s.add_argument("run_dir")
    s.add_argument("--name", required=True)
    s.add_argument("--dest")
    s.add_argument("--recipe")
    s.add_argument("--data")
    s.add_argument("--init")
    s.add_argument("--hardware")
    s.add_argument("--notes")
    s.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"],
                   help="storage dtype of the weights (float16 halves the file; loading casts back)")
    s.add_argument("--overwrite", action="store_true")
    s.set_defaults(func=cmd_export)

    s = sub.add_parser("finetune", help="fine-tune a pretrained model on a folder of your images")
    s.add_argument("name")
    s.add_argument("--data", required=True, help="folder of training images")
    s.add_argument("--out", default="runs/finetune")
    s.add_argument("--weights", help="start from these weights instead of the published ones")
    s.add_argument("--epochs", type=int, default=5)
    s.add_argument("--lr", type=float, default=1e-3)
    s.add_argument("--patch", type=int, default=99)
    s.add_argument("--batch-size", type=int, default=8)
    s.add_argument("--samples", type=int, default=1000, help="random crops per epoch")
    s.add_argument("--val-images", type=int, default=2)
    s.add_argument("--precision", default="32-true")
    s.add_argument("--accelerator", default="auto")
    s.add_argument("--full", action="store_true", help="train all weights (default: adapters/steps only)")
    s.add_argument("--fast-dev-run", action="store_true")
    s.set_defaults(func=cmd_finetune)

    s = sub.add_parser("demo", help="restore a built-in sample with every pretrained checkpoint")
    s.add_argument("names", nargs="*")
    s.add_argument("-o", "--out", default="zoo-demo")
    s.add_argument("--overwrite", action="store_true")
    s.set_defaults(func=cmd_demo)

    try:
        from zoo.cli.hub_commands import add_hub_commands
    except ImportError:  # while zoo.hub is being built
        pass
    else:
        add_hub_commands(sub)
    return p
