"""zoo.hub: manifest, resolution order, sha256 verification, loopback Hub download, prefetch, publish."""

from __future__ import annotations

import argparse
import hashlib
import http.server
import json
import re
import shutil
import threading
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import zoo
from zoo.hub import (
    CheckpointNotFoundError,
    ChecksumError,
    ManifestError,
    StateDictMismatchError,
    load_manifest,
    model_card,
    prefetch,
    publish,
    refresh_card,
    resolve_files,
    set_bench,
    update_entry,
)
from zoo.hub.manifest import TrainingInfo, validate_manifest

NAME = "lorun-cs-r25"
TINY = {"stages": 2, "widths": [8, 16], "phi_init": "checkpoint", "qinit": True}
REV = "0123456789abcdef0123456789abcdef01234567"
REPO = "unfolding-zoo/lorun-cs-r25"


# ---------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def tiny_weights() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    net = zoo.create(NAME, **TINY)
    return {k: v.detach().float().contiguous().clone() for k, v in net.state_dict().items()}


def write_ckpt(folder: Path, weights: dict[str, torch.Tensor], config: dict = TINY, readme: bool = True) -> Path:
    """A checkpoint folder as ExportWeights / zoo export writes it."""
    folder.mkdir(parents=True, exist_ok=True)
    save_file(weights, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"model": NAME, "config": config}, indent=1))
    if readme:
        (folder / "README.md").write_text(f"# {NAME}\n")
    return folder


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Isolated manifest, HF cache and endpoint; nothing outside tmp_path is read or written."""
    repo = tmp_path / "repo"
    repo.mkdir()
    monkeypatch.setenv("ZOO_MANIFEST", str(repo / "checkpoints_manifest.json"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    for var in ("ZOO_CHECKPOINTS", "HF_HUB_CACHE", "HF_HUB_OFFLINE", "HF_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    return repo


@pytest.fixture
def recorded(env, tmp_path, tiny_weights):
    """A manifest entry for NAME made from a source folder (not in any searched location)."""
    src = write_ckpt(tmp_path / "src", tiny_weights)
    update_entry(NAME, src, training={"recipe": "recipes/lorun_cs_phase1.yaml", "steps": 10, "epochs": 1})
    return src


def publish_record(revision: str = REV) -> None:
    m = load_manifest()
    m.checkpoints[NAME].hub.revision = revision
    m.checkpoints[NAME].hub.published = True
    m.save()


def assert_weights(net: torch.nn.Module, weights: dict[str, torch.Tensor]) -> None:
    assert not net.training
    sd = net.state_dict()
    assert all(torch.equal(sd[k], weights[k]) for k in weights)


# ---------------------------------------------------------------------------------------------
# manifest


def test_missing_manifest_is_empty(env):
    m = load_manifest()
    assert m.checkpoints == {} and m.path == env / "checkpoints_manifest.json"
    assert zoo.hub.manifest.default_checkpoints_dir() == env.resolve() / "checkpoints"
    assert zoo.list_models(pretrained=True) == []


def test_manifest_round_trip(recorded, env):
    path = env / "checkpoints_manifest.json"
    text = path.read_text()
    data = json.loads(text)
    assert data["schema_version"] == 1
    assert text == json.dumps(data, indent=2, sort_keys=True) + "\n"  # sorted keys, indent 2

    rec = load_manifest().checkpoints[NAME]
    assert (rec.architecture, rec.task) == ("lorun", "cs")
    assert rec.config == TINY
    assert sorted(rec.files) == ["README.md", "config.json", "model.safetensors"]
    mf = rec.files["model.safetensors"]
    assert mf.size == (recorded / "model.safetensors").stat().st_size
    assert mf.sha256 == hashlib.sha256((recorded / "model.safetensors").read_bytes()).hexdigest()
    assert rec.hub.repo_id == REPO and rec.hub.revision is None and rec.hub.published is False
    assert isinstance(rec.training, TrainingInfo) and rec.training.steps == 10
    assert zoo.list_models("lorun-cs-r2*", pretrained=True) == [NAME]

    bench = {"command": f"zoo bench {NAME}", "protocol": {"crop": 0}, "results": {"Set11": {"psnr": 30.1, "ssim": 0.9}}}
    set_bench(NAME, bench)
    rec2 = load_manifest().checkpoints[NAME]
    assert rec2.bench.results["Set11"]["psnr"] == 30.1
    assert rec2.files == rec.files and rec2.training == rec.training  # only bench changed
    # re-recording keeps training/bench; load → save is byte-identical
    update_entry(NAME, recorded)
    assert load_manifest().checkpoints[NAME].bench == rec2.bench
    before = path.read_text()
    load_manifest().save()
    assert path.read_text() == before
    assert "zoo.load(\"lorun-cs-r25\")" in model_card(NAME) and "| Set11 |" in model_card(NAME)
    assert model_card(NAME).startswith("---\nlibrary_name: unfolding-zoo\n")


GOOD_FILE = {"sha256": "a" * 64, "size": 1}


def _manifest(**changes):
    rec = {"architecture": "lorun", "task": "cs", "config": {}, "files": {"model.safetensors": dict(GOOD_FILE)},
           "hub": {"repo_id": REPO, "revision": None, "published": False}}
    rec.update(changes)
    return {"schema_version": 1, "checkpoints": {NAME: rec}}


@pytest.mark.parametrize("changes, expect", [
    ({"files": {"model.safetensors": {"sha256": "abc", "size": 1}}}, r'files\["model.safetensors"\].sha256.*64'),
    ({"files": {"model.safetensors": {"sha256": "A" * 64, "size": 1}}}, r"sha256.*does not match"),
    ({"files": {"model.safetensors": {"sha256": "a" * 64, "size": "1"}}}, r"size: expected integer"),
    ({"files": {"model.safetensors": {"sha256": "a" * 64, "size": True}}}, r"size: expected integer"),
    ({"files": {"config.json": dict(GOOD_FILE)}}, r'files\["model.safetensors"\]: required key missing'),
    ({"hub": {"repo_id": REPO, "revision": "main", "published": True}}, r"hub.revision: expected null or .*40"),
    ({"hub": {"repo_id": REPO, "revision": None, "published": True}}, r"hub.revision: published is true"),
    ({"hub": {"repo_id": "noslash", "revision": None, "published": False}}, r"hub.repo_id"),
    ({"task": 3}, r"field task: expected string"),
    ({"bogus": 1}, r"field bogus: unknown key"),
    ({"training": {"steps": "many"}}, r"training.steps: expected integer"),
])
def test_schema_errors_name_checkpoint_and_field(changes, expect):
    with pytest.raises(ManifestError, match=f"checkpoint '{NAME}'") as ei:
        validate_manifest(_manifest(**changes))
    assert re.search(expect, str(ei.value)), str(ei.value)


def test_schema_errors_top_level_and_file(env):
    with pytest.raises(ManifestError, match="schema_version: must be 1"):
        validate_manifest({"schema_version": 2, "checkpoints": {}})
    data = _manifest()
    del data["checkpoints"][NAME]["task"]
    path = env / "checkpoints_manifest.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ManifestError, match=r"checkpoint 'lorun-cs-r25': field task: required key missing"):
        load_manifest()
    path.write_text("{not json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        load_manifest()


# ---------------------------------------------------------------------------------------------
# resolution + loading from local folders


def test_resolution_order(recorded, env, tmp_path, monkeypatch, tiny_weights):
    explicit = shutil.copytree(recorded, tmp_path / "explicit")
    zc = shutil.copytree(recorded, tmp_path / "zc" / NAME)
    repo_folder = shutil.copytree(recorded, env / "checkpoints" / NAME)
    monkeypatch.setenv("ZOO_CHECKPOINTS", str(tmp_path / "zc"))

    assert resolve_files(NAME, explicit)["model.safetensors"] == explicit / "model.safetensors"
    one = resolve_files(NAME, explicit / "model.safetensors", files=["model.safetensors"])
    assert one == {"model.safetensors": explicit / "model.safetensors"}
    assert resolve_files(NAME)["config.json"] == zc / "config.json"          # ZOO_CHECKPOINTS beats the repo
    monkeypatch.delenv("ZOO_CHECKPOINTS")
    assert resolve_files(NAME)["README.md"] == repo_folder / "README.md"     # then the git checkout's folder

    assert_weights(zoo.load(NAME), tiny_weights)
    assert_weights(zoo.load(NAME, path=str(explicit)), tiny_weights)

    shutil.rmtree(repo_folder)
    with pytest.raises(CheckpointNotFoundError, match=r"not published.*checkpoints/lorun-cs-r25"):
        zoo.load(NAME)


def test_name_without_checkpoint_lists_pretrained(recorded):
    with pytest.raises(CheckpointNotFoundError, match=r"no pretrained checkpoint.*lorun-cs-r25"):
        zoo.load("lorun-cs-r50")
    with pytest.raises(zoo.UnknownModelError):
        zoo.load("lorun-cs-r26")


def test_strict_key_mismatch_refused(env, tmp_path, tiny_weights):
    # config.json claims 3 stages, the weights have 2: the manifest records what the folder says
    folder = write_ckpt(env / "checkpoints" / NAME, tiny_weights, config={**TINY, "stages": 3})
    update_entry(NAME, folder)
    with pytest.raises(StateDictMismatchError, match=r"missing keys: denoiser\..*lora_A\.2"):
        zoo.load(NAME)
    extra = {**tiny_weights, "bogus.weight": torch.zeros(1)}
    write_ckpt(folder, extra)
    update_entry(NAME, folder)
    with pytest.raises(StateDictMismatchError, match=r"unexpected keys: bogus.weight"):
        zoo.load(NAME)


def test_tampered_and_truncated_files_refused(recorded, env):
    folder = shutil.copytree(recorded, env / "checkpoints" / NAME)
    rec = load_manifest().checkpoints[NAME].files["model.safetensors"]
    f = folder / "model.safetensors"
    data = bytearray(f.read_bytes())
    data[-1] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(ChecksumError) as ei:
        zoo.load(NAME)
    msg = str(ei.value)
    assert rec.sha256 in msg and hashlib.sha256(data).hexdigest() in msg and "NOT loaded" in msg
    assert "model.safetensors" in msg and "update_entry" in msg  # a local folder: restore or re-record

    f.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(ChecksumError, match=rf"truncated(.|\n)*size {rec.size} bytes(.|\n)*size {len(data) // 2} bytes"):
        zoo.load(NAME)


# ---------------------------------------------------------------------------------------------
# the real download path: a loopback server answering like the Hub's /resolve endpoint


class FakeHub:
    """``HEAD``/``GET /{repo_id}/resolve/{revision}/{filename}`` with the headers hf_hub_download needs.

    huggingface_hub 2.4 reads ``X-Repo-Commit`` (commit), ``X-Linked-Etag`` or ``ETag`` (blob name),
    ``X-Linked-Size`` or ``Content-Length`` (size) from the HEAD answer, then GETs the same URL
    (``Range: bytes=N-`` answered with 206 when resuming).

    ``mode`` makes the ``.safetensors`` file misbehave like a broken or hostile mirror (other files
    are served normally): ``huge`` announces 2 GB and streams zeros; ``oversend`` announces the
    right size but its GET sends 8 MiB more; ``drop`` closes every GET half-way; ``drop_once``
    only the first; ``hang_head`` accepts the HEAD and never answers; ``stall`` sends the GET's
    headers and then nothing; ``drip`` sends 64 bytes every 0.1 s. ``etags`` overrides the ETag
    of a file (a lying server). ``sent`` counts the body bytes written.
    """

    HUGE = 2_000_000_000
    CAP = 8 << 20  # no mode ever sends more than this per GET

    def __init__(self) -> None:
        self.files: dict[tuple[str, str, str], bytes] = {}
        self.etags: dict[tuple[str, str, str], str] = {}
        self.requests: list[tuple[str, str]] = []
        self.mode = "good"
        self.sent = 0
        self.dropped = False
        self.release = threading.Event()  # set by stop(): hanging handlers return
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _write(self, data: bytes) -> bool:
                try:
                    self.wfile.write(data)
                    self.wfile.flush()
                except OSError:  # the client gave up: fine
                    return False
                hub.sent += len(data)
                return True

            def _answer(self, body: bool) -> None:
                hub.requests.append((self.command, self.path))
                m = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", self.path)
                data = hub.files.get(m.groups()) if m else None
                if data is None:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                _, rev, fname = m.groups()
                mode = hub.mode if fname.endswith(".safetensors") else "good"
                if mode == "hang_head" and not body:
                    hub.release.wait(60)
                    return
                if fname.endswith(".safetensors"):  # LFS file: the ETag is its sha256
                    etag = hashlib.sha256(data).hexdigest()
                else:  # regular git file: the ETag is its git blob sha1
                    etag = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
                etag = hub.etags.get(m.groups(), etag)
                size = hub.HUGE if mode == "huge" else len(data) + (hub.CAP if mode == "oversend" and body else 0)
                start = 0
                rng = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
                if body and rng and mode not in ("drop", "huge", "oversend"):
                    start = int(rng.group(1))
                self.send_response(206 if start else 200)
                self.send_header("X-Repo-Commit", rev)
                self.send_header("ETag", f'"{etag}"')
                self.send_header("Content-Length", str(size - start))
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                if not body:
                    return
                if mode in ("huge", "oversend"):
                    self._write(data if mode == "oversend" else b"")
                    for _ in range(hub.CAP >> 16):
                        if not self._write(b"\0" * (1 << 16)):
                            return
                elif mode == "drop" or (mode == "drop_once" and not hub.dropped):
                    hub.dropped = True
                    self._write(data[: len(data) // 2])  # then close: "peer closed connection"
                elif mode == "stall":
                    hub.release.wait(60)
                elif mode == "drip":
                    for i in range(start, len(data), 64):
                        if hub.release.wait(0.1) or not self._write(data[i:i + 64]):
                            return
                else:
                    self._write(data[start:])

            def do_HEAD(self) -> None:  # noqa: N802
                self._answer(body=False)

            def do_GET(self) -> None:  # noqa: N802
                self._answer(body=True)

            def log_message(self, *a) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def add_folder(self, folder: Path, repo: str = REPO, rev: str = REV) -> None:
        for p in folder.iterdir():
            self.files[(repo, rev, p.name)] = p.read_bytes()

    def stop(self) -> None:
        self.release.set()
        if self.thread.is_alive():
            self.server.shutdown()
            self.server.server_close()
            self.thread.join(5)


@pytest.fixture
def hub(recorded, monkeypatch):
    h = FakeHub()
    h.add_folder(recorded)
    publish_record()
    monkeypatch.setenv("HF_ENDPOINT", h.url)
    yield h
    h.stop()


def _blob(tmp_path: Path, fname: str = "model.safetensors") -> Path:
    snap = tmp_path / "hf" / "hub" / "models--unfolding-zoo--lorun-cs-r25" / "snapshots" / REV / fname
    assert snap.exists()
    return snap.resolve()


def test_download_verify_cache_offline_tamper(hub, tmp_path, monkeypatch, tiny_weights):
    net = zoo.load(NAME)  # HEAD + GET through huggingface_hub's real download code
    assert_weights(net, tiny_weights)
    assert ("GET", f"/{REPO}/resolve/{REV}/model.safetensors") in hub.requests
    blob = _blob(tmp_path)
    assert blob.parent.name == "blobs" and blob.name == load_manifest().checkpoints[NAME].files["model.safetensors"].sha256

    hub.stop()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    n_req = len(hub.requests)
    assert_weights(zoo.load(NAME), tiny_weights)  # pinned revision + cache: no network at all
    assert len(hub.requests) == n_req

    blob.write_bytes(blob.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(ChecksumError, match=rf"(?s)expected: sha256 [0-9a-f]{{64}}.*{re.escape(str(blob))}") as ei:
        zoo.load(NAME)
    assert f"zoo prefetch {NAME}" in str(ei.value) and not blob.exists()  # evicted: a plain prefetch repairs it


def test_offline_not_cached_explains_prefetch(hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CheckpointNotFoundError, match=rf"HF_HUB_OFFLINE.*zoo prefetch {NAME}"):
        zoo.load(NAME)
    assert hub.requests == []


def test_bad_bytes_on_server_refused(hub, tmp_path):
    key = (REPO, REV, "model.safetensors")
    hub.files[key] = hub.files[key][:-4] + b"XXXX"
    with pytest.raises(ChecksumError, match="announces sha256"):  # its ETag says so: refused before the GET
        zoo.load(NAME)


def test_prefetch_and_cli(hub, tmp_path):
    from zoo.cli.hub_commands import add_hub_commands

    got = prefetch()
    assert sorted(got[NAME]) == ["README.md", "config.json", "model.safetensors"]
    assert all(p.is_file() for p in got[NAME].values())

    blob = _blob(tmp_path)
    good = blob.read_bytes()
    blob.write_bytes(good[: len(good) // 3])  # an interrupted copy
    with pytest.raises(ChecksumError, match="truncated"):
        prefetch([NAME])

    parser = argparse.ArgumentParser(prog="zoo")
    add_hub_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["prefetch", NAME, "--force"])
    assert args.func(args) == 0                       # --force re-downloads and repairs the blob
    assert blob.read_bytes() == good

    other = tmp_path / "other_cache"
    args = parser.parse_args(["prefetch", "--cache-dir", str(other)])
    assert args.func(args) == 0 and any(other.rglob("model.safetensors"))
    args = parser.parse_args(["prefetch", "lorun-cs-r50"])
    assert args.func(args) == 2                       # no checkpoint: reported, non-zero exit

    del hub.files[(REPO, REV, "README.md")]           # the manifest names a file the Hub lacks
    with pytest.raises(CheckpointNotFoundError, match=r"(?s)refused lorun-cs-r25.*Entry Not Found.*hub.revision"):
        prefetch([NAME], cache_dir=tmp_path / "third_cache")


# ---------------------------------------------------------------------------------------------
# publish (HfApi mocked: no network)


def test_publish_records_revision(recorded, env, monkeypatch):
    from huggingface_hub import HfApi

    calls = {}
    sha = "fedcba9876543210fedcba9876543210fedcba98"

    def create_repo(self, repo_id, **kw):
        calls["create_repo"] = (repo_id, kw)

    def upload_folder(self, **kw):
        calls["upload_folder"] = kw
        return type("CommitInfo", (), {"oid": sha})()

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)

    folder = env / "checkpoints" / NAME
    write_ckpt(folder, {"w": torch.ones(2)}, readme=False)
    with pytest.raises(FileNotFoundError, match=r"lacks README.md.*refresh_card"):
        publish(NAME, "someorg/lorun")
    assert calls == {}
    update_entry(NAME, folder)
    assert refresh_card(NAME) == folder / "README.md"  # writes the card and pins its hash
    assert load_manifest().checkpoints[NAME].files["README.md"].size == (folder / "README.md").stat().st_size

    rec = publish(NAME, "someorg/lorun", private=True)
    assert calls["create_repo"][0] == "someorg/lorun" and calls["create_repo"][1]["exist_ok"] is True
    assert calls["create_repo"][1]["private"] is True
    assert Path(calls["upload_folder"]["folder_path"]) == folder
    assert sorted(calls["upload_folder"]["allow_patterns"]) == ["README.md", "config.json", "model.safetensors"]
    assert (rec.hub.repo_id, rec.hub.revision, rec.hub.published) == ("someorg/lorun", sha, True)
    on_disk = load_manifest().checkpoints[NAME]
    assert on_disk.hub == rec.hub
    assert on_disk.files["model.safetensors"].sha256 == hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    assert on_disk.training.recipe == "recipes/lorun_cs_phase1.yaml"  # kept from the earlier record

    from zoo.cli.hub_commands import add_hub_commands

    parser = argparse.ArgumentParser(prog="zoo")
    add_hub_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["publish", NAME, "--repo-id", "someorg/other", "--folder", str(folder)])
    assert args.func(args) == 0 and load_manifest().checkpoints[NAME].hub.repo_id == "someorg/other"
    # a card refreshed after publishing: the Hub copy is stale, revision kept, published false
    set_bench(NAME, {"results": {"Set5": {"psnr": 31.0}}})
    refresh_card(NAME)
    hub = load_manifest().checkpoints[NAME].hub
    assert (hub.revision, hub.published) == (sha, False) and "| Set5 |" in (folder / "README.md").read_text()

    (folder / "README.md").unlink()
    assert args.func(args) == 2


def test_explicit_path(env, recorded, tmp_path, tiny_weights):
    # a record exists: an explicit path is verified like every other source
    other = write_ckpt(tmp_path / "retrained", {k: v + 1 for k, v in tiny_weights.items()})
    with pytest.raises(ChecksumError, match="NOT loaded"):
        zoo.load(NAME, path=str(other))
    assert_weights(zoo.load(NAME, path=str(recorded / "model.safetensors"), device="cpu"), tiny_weights)
    # no record for this name: your own weights load with the folder's config, with a warning
    mine = write_ckpt(tmp_path / "mine", tiny_weights)
    with pytest.raises(ValueError, match="is for model 'lorun-cs-r25', not 'lorun-cs-r30'"):
        zoo.load("lorun-cs-r30", path=str(mine))
    (mine / "config.json").write_text(json.dumps({"model": "lorun-cs-r30", "config": {**TINY, "ratio": 0.25}}))
    with pytest.warns(UserWarning, match="without sha256 verification"):
        net = zoo.load("lorun-cs-r30", path=str(mine))
    assert_weights(net, tiny_weights)


def test_own_weights_of_a_listed_model(env, recorded, tmp_path, tiny_weights):
    # a fine-tune of a published model: verify=False loads it (warning), the folder's config wins
    changed = {k: v + 1 for k, v in tiny_weights.items()}
    mine = write_ckpt(tmp_path / "finetune", changed)
    with pytest.warns(UserWarning, match="verify=False.*without sha256 verification"):
        net = zoo.load(NAME, path=str(mine), verify=False)
    assert_weights(net, changed)
    with pytest.raises(ChecksumError):  # still verified by default
        zoo.load(NAME, path=str(mine))
    with pytest.raises(ValueError, match="pass their path"):
        zoo.load(NAME, verify=False)
    (mine / "config.json").write_text(json.dumps({"model": "lorun-cs-r30", "config": TINY}))
    with pytest.raises(ValueError, match="is for model 'lorun-cs-r30'"):  # another model's weights
        zoo.load(NAME, path=str(mine), verify=False)
