"""The Lightning base module: batch contract, losses, mixed precision, DDP (gloo), phases."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from zoo.training import LoRunModule, RestorationModule

TINY = {"widths": [8, 16], "stages": 2}


class _Patches(torch.utils.data.Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return {"target": torch.rand(1, 33, 66, generator=g)}


def _trainer(**kw):
    return L.Trainer(max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                     enable_model_summary=False, num_sanity_val_steps=0, accelerator="cpu", **kw)


@pytest.mark.parametrize("loss", ["l1", "mse", "rmse", "charbonnier", "psnr"])
def test_fit_validate_predict(loss):
    m = RestorationModule("lorun-cs-r25", TINY, loss=loss, supervise_last=2, supervise_weights=[1, 0.5])
    dl = DataLoader(_Patches(), batch_size=4)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    t = _trainer()
    t.fit(m, dl, dl)
    assert any(not torch.equal(before[k], v) for k, v in m.state_dict().items())
    assert "val/psnr" in t.callback_metrics and "val/ssim" in t.callback_metrics
    preds = t.predict(m, dl)
    assert preds[0].shape == (4, 1, 33, 66) and 0 <= preds[0].min() and preds[0].max() <= 1
    assert m.hparams.model == "lorun-cs-r25"  # hyper-parameters saved


def test_bf16_mixed_on_cpu_keeps_physics_fp32():
    m = RestorationModule("lorun-cs-r25", TINY)
    seen = []
    orig = m.net.physics.A

    def spy(x):
        y = orig(x)
        seen.append(y.dtype)
        return y

    m.net.physics.A = spy
    _trainer(precision="bf16-mixed").fit(m, DataLoader(_Patches(), batch_size=4))
    assert seen and all(d == torch.float32 for d in seen)
    assert all(p.dtype == torch.float32 for p in m.parameters())


def test_phase2_module_trains_only_adapters(tmp_path):
    from safetensors.torch import save_file

    base = RestorationModule("lorun-cs-base-r25", {"widths": [8, 16]})
    f = tmp_path / "p1.safetensors"
    save_file({k: v.contiguous() for k, v in base.net.state_dict().items()}, str(f))
    m = LoRunModule("lorun-cs-r25", TINY, phase1_weights=str(f))
    frozen = {k: v.clone() for k, v in m.net.denoiser.state_dict().items() if ".lora_" not in k}
    _trainer().fit(m, DataLoader(_Patches(), batch_size=4))
    after = m.net.denoiser.state_dict()
    assert all(torch.equal(frozen[k], after[k]) for k in frozen)
    cfg = m.export_config()
    assert cfg["phi_init"] == "checkpoint" and cfg["qinit"] is False


def _group_lr(module, param):
    opt = module.configure_optimizers()["optimizer"]
    (g,) = [g for g in opt.param_groups if any(p is param for p in g["params"])]
    return g["lr"], g["weight_decay"]


def test_joint_finetune_base_lr_scale():
    m = LoRunModule("lorun-cs-r25", TINY, freeze_base=False, base_lr_scale=0.2, lr=1e-3, physics_lr_scale=0.05,
                    weight_decay=1e-4, schedule_steps=10)
    named = dict(m.named_parameters())
    base = [n for n in named if n.startswith("net.denoiser.") and ".lora_" not in n]
    adapters = [n for n in named if ".lora_A." in n or ".lora_B." in n]
    physics = [n for n in named if n.startswith("net.physics.")]
    assert base and adapters and physics
    assert all(named[n].requires_grad for n in base + adapters)
    assert _group_lr(m, named[base[0]]) == pytest.approx((2e-4, 1e-4))
    assert _group_lr(m, named[adapters[0]]) == pytest.approx((1e-3, 1e-4))
    assert _group_lr(m, named[physics[0]]) == pytest.approx((5e-5, 0.0))  # physics: no decay
    # every trainable parameter in exactly one group
    opt = m.configure_optimizers()["optimizer"]
    ids = [id(p) for g in opt.param_groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in m.parameters() if p.requires_grad)
    before = {n: named[n].detach().clone() for n in base}
    _trainer().fit(m, DataLoader(_Patches(), batch_size=4))
    assert any(not torch.equal(before[n], dict(m.named_parameters())[n]) for n in base)  # the base moved


def test_base_lr_scale_refusals():
    with pytest.raises(ValueError, match="freeze_base=False"):
        LoRunModule("lorun-cs-r25", TINY, base_lr_scale=0.1)  # base frozen by default
    with pytest.raises(ValueError, match="> 0"):
        LoRunModule("lorun-cs-r25", TINY, freeze_base=False, base_lr_scale=0.0)


def test_non_finite_loss_is_refused():
    m = RestorationModule("lorun-cs-r25", TINY)
    bad = {"target": torch.full((2, 1, 33, 33), float("nan"))}
    with pytest.raises(ValueError, match="NaN"):
        m.training_step(bad, 0)


def test_psnr_loss_is_the_negated_mean_per_image_psnr():
    from zoo.metrics import psnr

    m = RestorationModule("lorun-cs-r25", TINY, loss="psnr")
    g = torch.Generator().manual_seed(0)
    target = torch.rand(3, 1, 16, 16, generator=g)
    pred = (target + torch.randn(3, 1, 16, 16, generator=g) * torch.tensor([0.01, 0.05, 0.2])[:, None, None, None]).clamp(0, 1)
    assert torch.allclose(m._loss(pred, target), -psnr(pred, target).mean(), atol=1e-4)
    assert float(m._loss(target, target)) == pytest.approx(-80.0)  # the 1e-8 floor, finite


def test_bad_loss_name():
    with pytest.raises(ValueError, match="loss"):
        RestorationModule("lorun-cs-r25", TINY, loss="l3")


DDP_SCRIPT = textwrap.dedent(
    """
    import json, sys, torch, lightning as L
    from lightning.pytorch.strategies import DDPStrategy
    from torch.utils.data import DataLoader
    sys.path.insert(0, {tests!r})
    from test_training import _Patches
    from zoo.training import RestorationModule
    torch.set_num_threads(1)
    m = RestorationModule("lorun-cs-r25", {{"widths": [8, 16], "stages": 2}})
    t = L.Trainer(max_steps=2, accelerator="cpu", devices=2, strategy=DDPStrategy(process_group_backend="gloo"),
                  logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    t.fit(m, DataLoader(_Patches(), batch_size=2), DataLoader(_Patches(), batch_size=2))
    if t.global_rank == 0:
        print("RESULT", json.dumps({{"world": t.world_size, "step": t.global_step,
                                     "psnr": float(t.callback_metrics["val/psnr"])}}))
    # gloo's worker threads must be joined before the interpreter exits, or a rank can abort
    # ("terminate called without an active exception", exit -6) after a successful fit
    torch.distributed.destroy_process_group()
    """
)


def test_ddp_two_cpu_processes_gloo(tmp_path):
    from pathlib import Path

    script = tmp_path / "ddp_fit.py"
    script.write_text(DDP_SCRIPT.format(tests=str(Path(__file__).parent)))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    line = next(l for l in out.stdout.splitlines() if l.startswith("RESULT"))
    res = json.loads(line.split(" ", 1)[1])
    assert res["world"] == 2 and res["step"] == 2 and res["psnr"] > 0


def test_throughput_log_counts_steps_after_warmup(tmp_path):
    from zoo.training import ThroughputLog

    m = RestorationModule("lorun-cs-r25", TINY)
    out = tmp_path / "rate.json"
    t = L.Trainer(max_steps=5, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                  enable_model_summary=False, num_sanity_val_steps=0, accelerator="cpu",
                  callbacks=[ThroughputLog(str(out), warmup=2)])
    t.fit(m, DataLoader(_Patches(), batch_size=2))
    rec = json.loads(out.read_text())
    assert rec["steps"] == 3  # steps 3..5: the first two are warm-up
    assert rec["steps_per_s"] > 0 and rec["samples_per_s"] == pytest.approx(2 * rec["steps_per_s"], rel=0.01)
    assert not list(tmp_path.glob(".rate.json.*"))  # written atomically: no partial file left
