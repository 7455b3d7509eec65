"""Mixed precision on CUDA: skipped without a GPU (CPU bf16 autocast is covered in test_training.py).

* every operator of the registry keeps its maths in float32 inside a CUDA float16 autocast;
* every pretrained checkpoint gives the same restoration under fp16 / bf16 autocast as in fp32
  (PSNR of the autocast output against the fp32 output, on a synthetic input);
* recipes of each family train two steps through the real ``zoo fit`` entry point under
  ``16-mixed`` (loss scaling) and ``bf16-mixed`` and export finite weights.

``experiments/gpu_session.sh`` runs this file on a lent GPU; its log is summarised in the README.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_physics import OPERATORS

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (mixed precision on CUDA)")

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINTS = sorted(json.loads((ROOT / "checkpoints_manifest.json").read_text())["checkpoints"])
# one stand-alone recipe per family (they start from published weights, not from runs/ of earlier phases)
# (leaf recipes composed after recipes/_base/trainer.yaml, extra flags)
_CASSI_CKPT = "--model.init_args.model_config={mask_init: checkpoint, mask_size: [256, 256]}"
RECIPES = {
    "lorun_cs_r25": (["lorun/cs/phase2_r25.yaml", "lorun/cs/continue.yaml"],
                     ["--model.init_args.model_config={phi_init: checkpoint, qinit: true, gamma: 18}",
                      "--model.init_args.init_weights=lorun-cs-r25"]),
    "block9_cs_r25": (["lorun/cs/block9_r25.yaml", "lorun/cs/continue.yaml"],
                      ["--model.init_args.init_weights=block9-cs-r25"]),
    "lorun_cassi": (["lorun/cassi/phase2.yaml", "lorun/cassi/continue.yaml"],
                    ["--model.init_args.init_weights=lorun-cassi-9stg", _CASSI_CKPT]),
    "block9_cassi": (["lorun/cassi/block9.yaml", "lorun/cassi/continue.yaml"],
                     ["--model.init_args.init_weights=block9-cassi", _CASSI_CKPT]),
    "ssopga_flash": (["ssopga/flash/train.yaml", "ssopga/flash/continue.yaml"], []),
    "pga_flash": (["ssopga/flash/train.yaml", "ssopga/flash/continue.yaml"],
                  ["--model.init_args.model=pga-flash", "--model.init_args.init_weights=pga-flash"]),
    "ssopga_pansharpen_wv": (["ssopga/pansharpen/wv.yaml"], []),
    "ssopga_pansharpen_4band": (["ssopga/pansharpen/4band.yaml"], []),
}
# fp32 vs autocast agreement (dB): fp16 keeps 11 mantissa bits, bf16 8, through up to 9 unrolled stages
MIN_PSNR = {torch.float16: 40.0, torch.bfloat16: 30.0}


def _target(net: torch.nn.Module, size: int = 128) -> torch.Tensor:
    """A smooth positive test image with the channel count the network restores."""
    from zoo.physics.cassi import SDCASSI
    from zoo.physics.cs import BlockCS
    from zoo.samples import sample_grey

    ph = net.physics
    if isinstance(ph, BlockCS):
        return sample_grey(size)
    c = ph.bands if isinstance(ph, SDCASSI) else int(net.channels)
    g = torch.Generator().manual_seed(0)
    low = torch.rand(1, c, size // 16, size // 16, generator=g)
    x = torch.nn.functional.interpolate(low, size=(size, size), mode="bicubic", align_corners=False)
    return (0.1 + 0.8 * x).clamp(0.02, 1.0) * sample_grey(size)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
@pytest.mark.parametrize("case", sorted(OPERATORS))
def test_operator_fp32_inside_cuda_autocast(case, dtype):
    make, shape = OPERATORS[case]
    op = make().float().cuda()
    x = torch.rand(*shape, device="cuda")
    ref = op.A_adjoint(op.A(x), img_size=shape[-2:])
    with torch.autocast("cuda", dtype=dtype):
        y = op.A(x.to(dtype))
        xt = op.A_adjoint(y, img_size=shape[-2:])
    for t in (y.values() if isinstance(y, dict) else [y]):
        assert t.dtype == torch.float32, "physics must run in float32 inside autocast"
    assert xt.dtype == torch.float32
    rel = (xt - ref).norm() / ref.norm()
    assert rel < (1e-2 if dtype == torch.bfloat16 else 2e-3), f"AᵀA x under autocast off by {float(rel):.2e}"


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
@pytest.mark.parametrize("name", CHECKPOINTS)
def test_pretrained_autocast_matches_fp32(name, dtype):
    import zoo
    from zoo.metrics import psnr

    net = zoo.load(name).cuda().eval()
    x = _target(net).cuda()
    torch.manual_seed(0)
    with torch.no_grad():
        inputs = net.measure(x)
        ref = net(**inputs).float()
        with torch.autocast("cuda", dtype=dtype):
            out = net(**inputs)
    assert torch.isfinite(out).all(), f"{name}: non-finite output under {dtype} autocast"
    agree = float(psnr(out.float().clamp(0, 1), ref.clamp(0, 1)).mean())
    print(f"{name} {dtype}: autocast vs fp32 PSNR {agree:.2f} dB")
    assert agree >= MIN_PSNR[dtype], f"{name}: {dtype} autocast output is {agree:.1f} dB from fp32"


@pytest.mark.parametrize("precision", ["16-mixed", "bf16-mixed"])
@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_trains_mixed_precision_on_cuda(recipe, precision, fake_all_root, tmp_path, monkeypatch):
    from safetensors.torch import load_file

    from fakedata import small_patch_args

    from zoo.cli.main import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ZOO_DATA", str(fake_all_root))
    leaves, extra = RECIPES[recipe]
    configs = [ROOT / "recipes" / "_base" / "trainer.yaml"] + [ROOT / "recipes" / f for f in leaves]
    main(["fit", *[a for c in configs for a in ("--config", str(c))], *extra, "--trainer.fast_dev_run=2",
          "--trainer.enable_progress_bar=false", f"--data.init_args.data_root={fake_all_root}",
          "--data.init_args.batch_size=2", "--data.init_args.num_workers=0", "--trainer.accelerator=cuda",
          f"--trainer.precision={precision}", f"--trainer.default_root_dir={tmp_path / 'run'}",
          *small_patch_args(configs, extra)])
    export = tmp_path / "run" / "export" / "model.safetensors"
    assert export.is_file(), "the recipe's ExportWeights callback wrote no weights"
    for k, v in load_file(str(export)).items():
        assert v.dtype == torch.float32 and torch.isfinite(v).all(), f"{recipe} {precision}: weight {k} not finite fp32"
