"""zoo.hub against broken or hostile sources (reliability audit D1-D4, D8, D9, D14, D15, D20).

A mirror that lies about sizes or bytes, dropped, stalled and slow connections (the loopback
:class:`test_hub.FakeHub` in its fault modes), bad files in the Hugging Face cache, in a
checkpoint folder or given as ``path=``. Every case must end in a clear error, quickly, with
nothing bad left in the cache.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import threading
import time
from pathlib import Path
from typing import Callable

import pytest
import torch
from safetensors.torch import save_file
from test_hub import (  # noqa: F401  (fixtures)
    NAME,
    REPO,
    REV,
    TINY,
    assert_weights,
    env,
    hub,
    publish_record,
    recorded,
    tiny_weights,
    write_ckpt,
)

import zoo
from zoo.hub import CheckpointNotFoundError, ChecksumError, load_manifest, prefetch, update_entry

STORAGE = Path("hf") / "hub" / "models--unfolding-zoo--lorun-cs-r25"
KEY = (REPO, REV, "model.safetensors")


def _outcome(fn: Callable[[], object], seconds: float = 20) -> BaseException | None:
    """Run ``fn`` in a thread and return what it raised; fail if it is still running after ``seconds``."""
    box: dict[str, BaseException] = {}

    def run() -> None:
        try:
            fn()
        except BaseException as e:  # noqa: BLE001  (the test inspects it)
            box["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"still running after {seconds} s (no timeout / deadline)"
    return box.get("error")


def _pointer(tmp_path: Path, fname: str = "model.safetensors") -> Path:
    return tmp_path / STORAGE / "snapshots" / REV / fname


def _cache_files(tmp_path: Path) -> list[Path]:
    root = tmp_path / STORAGE
    return [p for p in root.rglob("*") if p.is_file() and ".locks" not in p.parts] if root.exists() else []


def _size() -> int:
    return load_manifest().checkpoints[NAME].files["model.safetensors"].size


def _no_partial(tmp_path: Path) -> None:
    left = [p for p in (tmp_path / "hf").rglob("*") if p.name.endswith(".incomplete") or ".zoo-" in p.name]
    assert left == [], left


# ---------------------------------------------------------------------------------------------
# D1: the manifest's size caps a download


def test_announced_size_over_manifest_refused_before_download(hub, tmp_path):
    hub.mode = "huge"  # HEAD announces 2 GB for the small file
    err = _outcome(lambda: zoo.load(NAME))
    assert isinstance(err, ChecksumError), repr(err)
    msg = str(err)
    assert str(hub.HUGE) in msg and str(_size()) in msg and hub.url in msg and "nothing was downloaded" in msg
    assert ("GET", f"/{REPO}/resolve/{REV}/model.safetensors") not in hub.requests
    assert all(p.stat().st_size <= _size() for p in _cache_files(tmp_path))
    assert not _pointer(tmp_path).exists()
    _no_partial(tmp_path)


def test_body_longer_than_manifest_size_is_cut(hub, tmp_path):
    hub.mode = "oversend"  # honest HEAD, then a GET body 8 MiB too long
    err = _outcome(lambda: zoo.load(NAME))
    assert isinstance(err, ChecksumError), repr(err)
    assert str(_size()) in str(err) and hub.url in str(err)
    assert all(p.stat().st_size <= _size() for p in _cache_files(tmp_path))
    assert not _pointer(tmp_path).exists()
    _no_partial(tmp_path)


# ---------------------------------------------------------------------------------------------
# D2: a bad blob never stays in the cache; --force re-fetches


def test_corrupt_cached_blob_is_evicted(hub, tmp_path, monkeypatch, tiny_weights):
    zoo.load(NAME)
    pointer = _pointer(tmp_path)
    blob = pointer.resolve()
    good = blob.read_bytes()
    blob.write_bytes(good[:-8] + b"\0" * 8)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ChecksumError) as ei:
        zoo.load(NAME)
    msg = str(ei.value)
    assert not pointer.is_symlink() and not pointer.exists() and not blob.exists()
    assert "removed from the Hugging Face cache" in msg and f"zoo prefetch {NAME}" in msg
    monkeypatch.delenv("HF_HUB_OFFLINE")
    assert_weights(zoo.load(NAME), tiny_weights)  # the advice works: a plain load downloads it again
    assert pointer.resolve().read_bytes() == good


@pytest.mark.parametrize("lying_etag", [False, True])
def test_wrong_bytes_from_server_never_cached(hub, tmp_path, tiny_weights, lying_etag):
    good = hub.files[KEY]
    bad = good[:-4] + b"XXXX"
    hub.files[KEY] = bad
    if lying_etag:  # the ETag claims the manifest's sha256
        hub.etags[KEY] = load_manifest().checkpoints[NAME].files["model.safetensors"].sha256
    with pytest.raises(ChecksumError, match="corrupt or modified|announces sha256"):
        zoo.load(NAME)
    assert not _pointer(tmp_path).exists()
    assert all(p.read_bytes() != bad for p in _cache_files(tmp_path))
    _no_partial(tmp_path)
    hub.files[KEY], hub.etags = good, {}  # the mirror is fixed: the next load just works
    assert_weights(zoo.load(NAME), tiny_weights)


def test_prefetch_force_repoints_a_bad_pointer(hub, tmp_path):
    prefetch([NAME])
    pointer = _pointer(tmp_path)
    good_blob = pointer.resolve()
    bad_blob = good_blob.parent / ("9" * 64)
    bad_blob.write_bytes(b"not the weights")
    pointer.unlink()
    pointer.symlink_to(os.path.relpath(bad_blob, pointer.parent))
    got = prefetch([NAME], force=True)
    assert got[NAME]["model.safetensors"] == pointer
    assert pointer.resolve() == good_blob and good_blob.read_bytes() == hub.files[KEY]


# ---------------------------------------------------------------------------------------------
# D3: transport errors are a CheckpointNotFoundError saying what to do


def test_dropped_connection_is_a_clear_error(hub, tmp_path, capsys):
    from zoo.cli.main import main

    hub.mode = "drop"  # every GET of the weights closes half-way
    err = _outcome(lambda: prefetch([NAME]))
    assert isinstance(err, CheckpointNotFoundError), repr(err)
    msg = str(err)
    assert "interrupted" in msg and "retry" in msg and "HF_HUB_OFFLINE" in msg and hub.url in msg
    assert not _pointer(tmp_path).exists()
    _no_partial(tmp_path)
    rc: list[int] = []
    assert _outcome(lambda: rc.append(main(["prefetch", NAME]))) is None  # not a traceback
    assert rc == [2] and "interrupted" in capsys.readouterr().err


def test_one_dropped_connection_is_resumed(hub, tiny_weights):
    hub.mode = "drop_once"
    assert_weights(zoo.load(NAME), tiny_weights)
    assert hub.dropped


# ---------------------------------------------------------------------------------------------
# D4: bounded time (timeouts from the environment, a deadline per file)


@pytest.mark.parametrize("var", ["ZOO_HUB_TIMEOUT", "HF_HUB_ETAG_TIMEOUT"])
def test_head_that_never_answers_times_out(hub, tmp_path, monkeypatch, var):
    monkeypatch.setenv(var, "1")
    hub.mode = "hang_head"
    t = time.monotonic()
    err = _outcome(lambda: zoo.load(NAME))
    assert time.monotonic() - t < 8
    assert isinstance(err, CheckpointNotFoundError), repr(err)
    assert "did not answer" in str(err) and "ZOO_HUB_TIMEOUT" in str(err)
    _no_partial(tmp_path)


def test_stalled_body_times_out(hub, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_DOWNLOAD_TIMEOUT", "1")
    hub.mode = "stall"  # headers, then silence
    t = time.monotonic()
    err = _outcome(lambda: zoo.load(NAME))
    assert time.monotonic() - t < 10
    assert isinstance(err, CheckpointNotFoundError) and "interrupted" in str(err), repr(err)
    _no_partial(tmp_path)


def test_slow_drip_hits_the_deadline(hub, tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_HUB_TIMEOUT", "1")
    monkeypatch.setenv("ZOO_HUB_DEADLINE", "2")
    hub.mode = "drip"  # 640 bytes/s: each read is quick, the whole file would take minutes
    assert _size() > 10_000
    t = time.monotonic()
    err = _outcome(lambda: zoo.load(NAME))
    assert time.monotonic() - t < 8
    assert isinstance(err, CheckpointNotFoundError), repr(err)
    assert "ZOO_HUB_DEADLINE" in str(err) and "2 s" in str(err)
    assert not _pointer(tmp_path).exists()
    _no_partial(tmp_path)


def test_bad_timeout_setting_named(hub, monkeypatch):
    monkeypatch.setenv("ZOO_HUB_DEADLINE", "soon")
    with pytest.raises(ValueError, match="ZOO_HUB_DEADLINE.*'soon'"):
        zoo.load(NAME)


# ---------------------------------------------------------------------------------------------
# D8: unverified files that are not safetensors; config keys the builder does not take


def _bad_file(kind: str, good: bytes) -> bytes:
    if kind == "truncated":
        return good[: len(good) // 2]
    if kind == "empty":
        return b""
    if kind == "pickle":
        import io

        buf = io.BytesIO()
        torch.save({"w": torch.zeros(2)}, buf)
        return buf.getvalue()
    if kind == "header_length":
        return struct.pack("<Q", 1 << 62) + b"{}"
    header = json.dumps({"w": {"dtype": "F32", "shape": [10**12], "data_offsets": [0, 4]}}).encode()
    return struct.pack("<Q", len(header)) + header + b"\0" * 4  # shape far beyond the data


@pytest.mark.parametrize("kind", ["truncated", "empty", "pickle", "header_length", "huge_shape"])
def test_unverified_invalid_safetensors_named(env, recorded, tmp_path, kind):
    folder = shutil.copytree(recorded, tmp_path / "bad")
    f = folder / "model.safetensors"
    f.write_bytes(_bad_file(kind, f.read_bytes()))
    for path in (folder, f):
        with pytest.warns(UserWarning, match="without sha256"), \
                pytest.raises(ValueError, match=rf"{re.escape(str(f))}: not a valid safetensors file"):
            zoo.load(NAME, path=path, verify=False)


def test_cli_weights_invalid_file(env, recorded, tmp_path, capsys):
    from PIL import Image

    from zoo.cli.main import main

    folder = shutil.copytree(recorded, tmp_path / "bad")
    (folder / "model.safetensors").write_bytes(b"\0" * 100)
    Image.new("L", (33, 33)).save(tmp_path / "in.png")
    with pytest.warns(UserWarning):
        rc = main(["restore", NAME, str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"),
                   "--weights", str(folder)])
    assert rc == 2
    assert f"{folder / 'model.safetensors'}: not a valid safetensors file" in capsys.readouterr().err


def test_config_key_the_builder_does_not_take(env, tmp_path, tiny_weights):
    folder = write_ckpt(env / "checkpoints" / NAME, tiny_weights, config={**TINY, "bogus": 1})
    update_entry(NAME, folder)
    with pytest.raises(ValueError, match=rf"(?s)bogus.*{re.escape(str(load_manifest().path))}.*accepted.*stages"):
        zoo.load(NAME)
    mine = write_ckpt(tmp_path / "mine", tiny_weights, config={**TINY, "bogus": 1, "other": 2})
    with pytest.warns(UserWarning), \
            pytest.raises(ValueError, match=rf"(?s)bogus, other.*{re.escape(str(mine / 'config.json'))}.*widths"):
        zoo.load(NAME, path=mine, verify=False)


# ---------------------------------------------------------------------------------------------
# D9 / D20: the checksum error's advice is safe and names the manifest used


def _fix(err: BaseException) -> str:
    return str(err).split("fix:", 1)[1]


def test_fix_never_names_a_symlink_target_folder(env, recorded, tmp_path, monkeypatch):
    outside = tmp_path / "etc" / "passwd"
    outside.parent.mkdir()
    outside.write_text("root:x:0:0\n")
    zc = shutil.copytree(recorded, tmp_path / "zc" / NAME)
    (zc / "model.safetensors").unlink()
    (zc / "model.safetensors").symlink_to(outside)
    monkeypatch.setenv("ZOO_CHECKPOINTS", str(tmp_path / "zc"))
    with pytest.raises(ChecksumError) as ei:
        zoo.load(NAME)
    fix = _fix(ei.value)
    assert str(outside.parent) not in fix and str(zc) in fix
    assert "Hub copy" not in fix and "prefetch" not in fix  # unpublished: there is no Hub copy


def test_fix_for_an_explicit_file_keeps_the_users_folder(env, recorded, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my work")
    f = mine / "evil.safetensors"
    f.write_bytes((recorded / "model.safetensors").read_bytes()[:-4] + b"XXXX")
    with pytest.raises(ChecksumError) as ei:
        zoo.load(NAME, path=f)
    fix = _fix(ei.value)
    assert not re.search(rf"(delete|remove) {re.escape(str(mine))}", fix) and "verify=False" in fix


def test_fix_for_an_unpublished_checkout_folder(env, recorded):
    folder = shutil.copytree(recorded, env / "checkpoints" / NAME)
    (folder / "model.safetensors").write_bytes(b"\0" * 10)
    with pytest.raises(ChecksumError) as ei:
        zoo.load(NAME)
    fix = _fix(ei.value)
    assert f"git checkout -- checkpoints/{NAME}" in fix and "Hub copy" not in fix and "delete" not in fix
    assert "smaller than the manifest's size (truncated or another file)" in str(ei.value)


def test_fix_for_a_published_checkout_folder(env, recorded):
    publish_record()
    folder = shutil.copytree(recorded, env / "checkpoints" / NAME)
    (folder / "model.safetensors").write_bytes(b"\0" * 10)
    with pytest.raises(ChecksumError) as ei:
        zoo.load(NAME)
    fix = _fix(ei.value)
    assert f"remove {folder} to fall back to the Hub copy" in fix and f"zoo prefetch {NAME}" in fix


def test_error_names_the_manifest_used(env, recorded, monkeypatch):
    other = env / "other_manifest.json"
    (env / "checkpoints_manifest.json").rename(other)
    monkeypatch.setenv("ZOO_MANIFEST", str(other))
    folder = shutil.copytree(recorded, env / "checkpoints" / NAME)
    (folder / "model.safetensors").write_bytes(b"\0" * 10)
    with pytest.raises(ChecksumError) as ei:
        zoo.load(NAME)
    assert f"({other})" in str(ei.value) and "(checkpoints_manifest.json)" not in str(ei.value)


# ---------------------------------------------------------------------------------------------
# D14: an unusable $ZOO_CHECKPOINTS/<name> is reported


@pytest.mark.parametrize("kind, why", [("dangling", "dangling symlink"), ("directory", "not a regular file"),
                                       ("missing", "missing")])
def test_unusable_zoo_checkpoints_folder_warns(env, recorded, tmp_path, monkeypatch, tiny_weights, kind, why):
    zc = shutil.copytree(recorded, tmp_path / "zc" / NAME)
    f = zc / "model.safetensors"
    f.unlink()
    if kind == "dangling":
        f.symlink_to(tmp_path / "nowhere")
    elif kind == "directory":
        f.mkdir()
    shutil.copytree(recorded, env / "checkpoints" / NAME)
    monkeypatch.setenv("ZOO_CHECKPOINTS", str(tmp_path / "zc"))
    with pytest.warns(UserWarning, match=rf"{re.escape(str(zc))}.*model.safetensors.*{why}.*skipped"):
        net = zoo.load(NAME)
    assert_weights(net, tiny_weights)  # resolution goes on with the checkout's folder


# ---------------------------------------------------------------------------------------------
# D15: the bytes hashed are the bytes loaded


def test_file_swapped_after_verification_is_not_loaded(env, recorded, monkeypatch, tiny_weights):
    folder = shutil.copytree(recorded, env / "checkpoints" / NAME)
    real_create = zoo.api.create

    def create_after_a_swap(*a, **kw):  # runs between the sha256 check and the weights' load
        save_file({k: torch.zeros_like(v) for k, v in tiny_weights.items()}, str(folder / "model.safetensors"))
        return real_create(*a, **kw)

    monkeypatch.setattr(zoo.api, "create", create_after_a_swap)
    assert_weights(zoo.load(NAME), tiny_weights)
