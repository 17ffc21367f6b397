"""zoo.hub: safetensors folders, model cards, and the real huggingface_hub client against zoo/hub_server.py."""
from __future__ import annotations

import json
import logging
import os
import types
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import yaml
from huggingface_hub import HfApi, ModelCard, hf_hub_download
from safetensors import safe_open

from zoo.hub_server import HubServer, point_client_at
import zoo.files
from zoo import hub, registry
from zoo.hub import load_folder, push, render_card, resolve_weights, save_folder, sha256_file, snapshot
from zoo.nets import build_model
from zoo.registry import HubRef, ZooError

ENTRY = "pipnet_mbv2_300w"
METRICS = {"nme": 0.0512, "fr": 0.0108, "auc": 0.4871, "n": 554, "split": "common", "dataset": "300w",
           "command": "python -m train.evaluate pipnet_mbv2_300w --data DATA/300w --split common"}


@pytest.fixture(scope="module")
def state_dict() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = build_model("pipnet", 68, backbone="mobilenet_v2")
    with torch.no_grad():  # non-default running stats, so a lost buffer would show
        for name, buf in model.named_buffers():
            if buf.is_floating_point():
                buf.copy_(torch.rand_like(buf))
    return model.state_dict()


def _config() -> dict:
    e = registry.get(ENTRY)
    return {"name": e.name, "arch": e.arch, "arch_args": e.arch_args, "num_points": 68, "dataset": e.dataset,
            "scheme": e.scheme, "license": e.license, "notes": e.notes}


@pytest.fixture(scope="module")
def shared(hub_server, tmp_path_factory, state_dict) -> dict:
    """The real model, saved with its card and pushed once (tag v1); tests only read this repo."""
    folder = tmp_path_factory.mktemp("shared") / ENTRY
    card = render_card(_config(), METRICS, body="## Training\n\nRecipe: 60 epochs, Adam, 1x H100.")
    save_folder(folder, state_dict, _config(), card)
    repo_id = f"facezoo-test/{ENTRY}"
    return {"repo_id": repo_id, "sha": push(folder, repo_id, tag="v1"), "folder": folder}


@pytest.fixture
def tiny_folder(tmp_path: Path) -> Path:
    """A small model folder, for tests that write to repos of their own."""
    sd = {"conv.weight": torch.randn(4, 3, 3, 3), "bn.running_mean": torch.rand(4),
          "bn.num_batches_tracked": torch.tensor(7)}
    return save_folder(tmp_path / "tiny", sd, {"arch": "pipnet", "num_points": 68}, render_card({"arch": "pipnet"}))


@pytest.fixture
def repo_id(request) -> str:
    return f"facezoo-test/{request.node.name}"


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype, k
        assert torch.equal(a[k], b[k]), k


# ------------------------------------------------------------------------------------ local folders
def test_save_load_round_trip(tmp_path, state_dict):
    folder = save_folder(tmp_path / "m", state_dict, _config(), "# card")
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    config, loaded = load_folder(folder)
    assert config == json.loads(json.dumps(_config()))
    _assert_same(loaded, state_dict)
    text = (folder / "config.json").read_text()
    assert text == json.dumps(_config(), indent=2, sort_keys=True) + "\n"
    assert (folder / "README.md").read_text() == "# card\n"
    with safe_open(folder / "model.safetensors", "pt") as f:
        assert f.metadata() == {"format": "pt"}


def test_save_fp16_keeps_integer_buffers(tmp_path, state_dict):
    folder = save_folder(tmp_path / "m", state_dict, {"arch": "pipnet"}, "card", fp16=True)
    with safe_open(folder / "model.safetensors", "pt") as f:
        dtypes = {k: f.get_slice(k).get_dtype() for k in f.keys()}
    assert {dtypes[k] for k, v in state_dict.items() if v.is_floating_point()} == {"F16"}
    assert {dtypes[k] for k, v in state_dict.items() if not v.is_floating_point()} == {"I64"}
    _, loaded = load_folder(folder)
    for k, v in state_dict.items():
        want = v.half().float() if v.is_floating_point() else v
        assert loaded[k].dtype == want.dtype and torch.equal(loaded[k], want), k
    assert (folder / "model.safetensors").stat().st_size < 0.6 * 4 * sum(v.numel() for v in state_dict.values())


def test_save_folder_handles_views_and_shared_storage(tmp_path):
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    sd = {"t": base.t(), "row": base[1], "same": base}  # non-contiguous view, slices sharing storage
    _, loaded = load_folder(save_folder(tmp_path / "m", sd, {}, "card"))
    _assert_same(loaded, {k: v.contiguous() for k, v in sd.items()})


def test_load_folder_errors_name_the_file(tmp_path, state_dict):
    folder = tmp_path / "m"
    folder.mkdir()
    with pytest.raises(ZooError, match="config.json: missing"):
        load_folder(folder)
    (folder / "config.json").write_text("{not json")
    (folder / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(ZooError, match=r"config\.json: not valid JSON"):
        load_folder(folder)
    (folder / "config.json").write_text("{}")
    with pytest.raises(ZooError, match=r"model\.safetensors: not a readable safetensors file"):
        load_folder(folder)
    (folder / "model.safetensors").unlink()
    with pytest.raises(ZooError, match=r"model\.safetensors: missing"):
        load_folder(folder)


# ------------------------------------------------------------------------------------------ model card
def test_render_card_is_read_by_the_hub_client(tmp_path):
    text = render_card(_config(), {**METRICS, "nme_fp32": 0.0511}, body="## Training\n\nRecipe: 60 epochs.")
    assert text.startswith("---\n")
    meta = yaml.safe_load(text.split("---\n")[1])
    assert meta["library_name"] == "pytorch"
    assert meta["pipeline_tag"] == "keypoint-detection"
    assert meta["tags"] == ["facial-landmark-detection", "face-alignment", "pipnet", "safetensors"]
    assert meta["datasets"] == ["300w"]
    assert meta["license"] == "other" and meta["license_name"] == "300w-terms" and meta["license_link"]
    (index,) = meta["model-index"]
    assert index["name"] == ENTRY
    assert [(r["metrics"][0]["type"], r["metrics"][0]["value"], r["dataset"]["split"]) for r in index["results"]] == [
        ("nme", 0.0512, "common"), ("fr", 0.0108, "common"), ("auc", 0.4871, "common")]

    (tmp_path / "README.md").write_text(text)
    card = ModelCard.load(tmp_path / "README.md")  # huggingface_hub's own parser (model-index included)
    assert card.data.license == "other"
    results = {r.metric_type: r for r in card.data.eval_results}
    assert set(results) == {"nme", "fr", "auc"}
    assert results["nme"].metric_value == pytest.approx(0.0512)
    assert {(r.dataset_type, r.dataset_name, r.dataset_split, r.task_type) for r in results.values()} == {
        ("300w", "300W", "common", "keypoint-detection")}
    assert card.data.model_name == ENTRY

    body = card.text
    assert f'zoo.load("{ENTRY}")' in body
    assert METRICS["command"] in body
    assert "| NME | 0.0512 |" in body and "| nme_fp32 | 0.0511 |" in body and "554 faces" in body
    assert "Recipe: 60 epochs." in body
    assert "## License" in body and "non-commercial" in body


def test_render_card_licenses_and_no_metrics():
    card = render_card({"arch": "faceboxes", "name": "faceboxes_v2", "license": "MIT"})
    meta = yaml.safe_load(card.split("---\n")[1])
    assert meta["license"] == "mit" and "license_name" not in meta and "model-index" not in meta
    meta = yaml.safe_load(render_card({"arch": "haar", "license": "BSD-3-Clause (OpenCV)"}).split("---\n")[1])
    assert meta["license"] == "bsd-3-clause"
    assert "No metrics measured yet." in render_card({"arch": "pipnet"})


# ---------------------------------------------------------------------------------- push / snapshot
def test_push_then_snapshot_gives_the_same_tensors(hf_home, shared, state_dict):
    sha = shared["sha"]
    assert len(sha) == 40 and int(sha, 16) >= 0
    refs = HfApi().list_repo_refs(shared["repo_id"])
    assert {b.name: b.target_commit for b in refs.branches} == {"main": sha}
    assert {t.name: t.target_commit for t in refs.tags} == {"v1": sha}
    files = HfApi().list_repo_files(shared["repo_id"], revision="v1")
    assert sorted(files) == [".gitattributes", "README.md", "config.json", "model.safetensors"]

    folder = snapshot(shared["repo_id"])
    assert folder.name == sha and str(folder).startswith(str(hf_home))
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    config, loaded = load_folder(folder)
    assert config == json.loads(json.dumps(_config()))
    _assert_same(loaded, state_dict)
    assert (folder / "README.md").read_text() == (shared["folder"] / "README.md").read_text()
    assert sha256_file(folder / "model.safetensors") == sha256_file(shared["folder"] / "model.safetensors")
    assert snapshot(shared["repo_id"], revision="v1") == folder
    assert snapshot(shared["repo_id"], revision=sha) == folder
    assert HfApi().model_info(shared["repo_id"]).sha == sha


def test_push_moves_the_branch_and_keeps_old_commits(hub_server, hf_home, tiny_folder, repo_id):
    first = push(tiny_folder, repo_id, tag="v1")
    assert push(tiny_folder, repo_id) == first  # nothing changed: no new commit
    config, sd = load_folder(tiny_folder)
    sd2 = {**sd, "conv.weight": sd["conv.weight"] + 1}
    save_folder(tiny_folder, sd2, config, (tiny_folder / "README.md").read_text())
    second = push(tiny_folder, repo_id, commit_message="retrain", tag="v2")
    assert second != first and len(second) == 40
    refs = HfApi().list_repo_refs(repo_id)
    assert {b.name: b.target_commit for b in refs.branches} == {"main": second}
    assert {t.name: t.target_commit for t in refs.tags} == {"v1": first, "v2": second}
    titles = [c.title for c in HfApi().list_repo_commits(repo_id)]
    assert titles[:2] == ["retrain", "Upload tiny with zoo.hub.push"]
    _assert_same(load_folder(snapshot(repo_id))[1], sd2)
    _assert_same(load_folder(snapshot(repo_id, revision="v1"))[1], sd)
    with pytest.raises(ZooError, match=r"failed to tag .*'v2'.*conflict"):
        push(tiny_folder, repo_id, tag="v2")  # the tag exists already


def test_push_to_a_branch(hub_server, hf_home, tiny_folder, repo_id):
    main = push(tiny_folder, repo_id)
    (tiny_folder / "README.md").write_text(render_card({"arch": "pipnet"}, body="dev build"))
    dev = push(tiny_folder, repo_id, revision="dev", commit_message="to dev")
    refs = {b.name: b.target_commit for b in HfApi().list_repo_refs(repo_id).branches}
    assert refs == {"main": main, "dev": dev} and dev != main
    assert "dev build" in (snapshot(repo_id, revision="dev") / "README.md").read_text()
    assert "dev build" not in (snapshot(repo_id) / "README.md").read_text()
    with pytest.raises(ZooError, match="needs a branch name"):
        push(tiny_folder, repo_id, revision=main)


def test_push_checks_the_folder(tmp_path, hub_server):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ZooError, match=r"missing model\.safetensors, README\.md"):
        push(tmp_path, "facezoo-test/incomplete")
    assert ("model", "facezoo-test/incomplete") not in hub_server.repos


def test_snapshot_errors_are_readable(hub_server, hf_home, shared, tiny_folder, repo_id):
    with pytest.raises(ZooError, match=r"Hub repo 'facezoo-test/nope' not found"):
        snapshot("facezoo-test/nope")
    with pytest.raises(ZooError, match=r"revision 'no-such-branch' not found in Hub repo"):
        snapshot(shared["repo_id"], revision="no-such-branch")
    with pytest.raises(ZooError, match=r"revision '0{40}' not found"):
        snapshot(shared["repo_id"], revision="0" * 40)
    api = HfApi()
    api.create_repo(repo_id)
    api.upload_file(path_or_fileobj=tiny_folder / "config.json", path_in_repo="config.json", repo_id=repo_id)
    with pytest.raises(ZooError, match=rf"model\.safetensors not found in Hub repo '{repo_id}'"):
        snapshot(repo_id)
    api.upload_file(path_or_fileobj=tiny_folder / "model.safetensors", path_in_repo="model.safetensors",
                    repo_id=repo_id)
    assert not (snapshot(repo_id) / "README.md").exists()  # a card is optional
    with pytest.raises(ZooError, match="invalid Hub repo id"):
        snapshot("not a/valid--id")


def test_snapshot_when_the_hub_is_unreachable(hf_home, monkeypatch):
    dead = HubServer().start()
    url = dead.url
    dead.stop()
    point_client_at(monkeypatch, url)
    from huggingface_hub.utils import _http

    monkeypatch.setattr(_http, "time", types.SimpleNamespace(sleep=lambda s: None))  # skip the client's backoff
    with pytest.raises(ZooError, match=r"could not reach the Hub at http://127\.0\.0\.1"):
        snapshot("facezoo-test/anything")


def test_token_protected_hub(hf_home, tiny_folder, monkeypatch):
    with HubServer(token="hf_secret") as locked:
        point_client_at(monkeypatch, locked.url)
        with pytest.raises(ZooError, match=r"refused access .*HTTP 401.*token"):
            push(tiny_folder, "facezoo-test/locked")
        with pytest.raises(ZooError, match=r"HTTP 401: Invalid credentials"):
            push(tiny_folder, "facezoo-test/locked", token="hf_wrong")
        sha = push(tiny_folder, "facezoo-test/locked", token="hf_secret", private=True)
        assert locked.repos[("model", "facezoo-test/locked")].private
        with pytest.raises(ZooError, match=r"refused access .*401"):
            snapshot("facezoo-test/locked")
        assert snapshot("facezoo-test/locked", token="hf_secret").name == sha
        monkeypatch.setenv("HF_TOKEN", "hf_secret")  # the client's usual way to find a token
        assert snapshot("facezoo-test/locked").name == sha


# ---------------------------------------------------------------------------------- resolve_weights
@pytest.fixture
def no_bundled(tmp_path, monkeypatch) -> Path:
    empty = tmp_path / "bundled"
    empty.mkdir()
    monkeypatch.setattr(zoo.files, "BUNDLED_DIR", empty)
    return empty


def _entry(repo_id: str, revision: str | None, sha256: str | None, name: str = ENTRY):
    return replace(registry.get(name), hub=HubRef(repo_id, revision=revision, sha256=sha256))


def test_resolve_weights_downloads_the_pinned_commit(hub_server, hf_home, zoo_home, no_bundled, shared):
    digest = sha256_file(shared["folder"] / "model.safetensors")
    entry = _entry(shared["repo_id"], shared["sha"], digest)
    path = resolve_weights(entry)
    assert path.name == "model.safetensors" and path.parent.name == shared["sha"]
    assert str(path).startswith(str(hf_home)) and sha256_file(path) == digest
    n = len(hub_server.requests)
    assert resolve_weights(entry) == path  # a pinned commit in the cache needs no request at all
    assert len(hub_server.requests) == n


def test_resolve_weights_refuses_a_wrong_sha256(hub_server, hf_home, zoo_home, no_bundled, shared):
    actual = sha256_file(shared["folder"] / "model.safetensors")
    entry = _entry(shared["repo_id"], shared["sha"], "ab" * 32)
    want = rf"model\.safetensors: sha256 mismatch .*expected {'ab' * 32}, actual {actual}"
    with pytest.raises(ZooError, match=want):
        resolve_weights(entry)


def test_resolve_weights_falls_through_to_bundled_then_local(hub_server, hf_home, zoo_home, no_bundled, shared,
                                                             caplog):
    digest = sha256_file(shared["folder"] / "model.safetensors")
    unpinned = _entry(shared["repo_id"], "f" * 40, None)  # a commit the Hub does not have
    local = zoo_home / ENTRY / "model.safetensors"
    local.parent.mkdir()
    local.write_bytes((shared["folder"] / "model.safetensors").read_bytes())
    with caplog.at_level(logging.INFO, logger="zoo.hub"):
        assert resolve_weights(unpinned) == local
    assert any(r.levelno == logging.INFO and "revision 'fff" in r.getMessage() for r in caplog.records)
    bundled = no_bundled / ENTRY / "model.safetensors"
    bundled.parent.mkdir()
    bundled.write_bytes(b"tampered")
    assert resolve_weights(unpinned) == bundled  # nothing to check it against
    pinned = _entry(shared["repo_id"], "f" * 40, digest)
    with pytest.raises(ZooError, match=r"bundled.*model\.safetensors: sha256 mismatch"):
        resolve_weights(pinned)  # bundled comes before local, and is refused


def test_resolve_weights_skips_the_network_for_an_identical_copy(hub_server, hf_home, zoo_home, no_bundled, shared):
    digest = sha256_file(shared["folder"] / "model.safetensors")
    local = zoo_home / ENTRY / "model.safetensors"
    local.parent.mkdir()
    local.write_bytes((shared["folder"] / "model.safetensors").read_bytes())
    n = len(hub_server.requests)
    assert resolve_weights(_entry(shared["repo_id"], shared["sha"], digest)) == local
    assert len(hub_server.requests) == n
    local.write_bytes(b"other bytes")  # not the pinned file: the Hub's copy wins
    path = resolve_weights(_entry(shared["repo_id"], shared["sha"], digest))
    assert path.parent.name == shared["sha"] and len(hub_server.requests) > n


def test_recipe_only_entries_say_how_to_make_weights(zoo_home, no_bundled):
    name = "pipnet_r101_wflw"
    entry = registry.get(name)
    assert entry.hub.revision is None and entry.status == "recipe-only"
    with pytest.raises(ZooError, match=rf"{name} has no weights yet \(status: recipe-only\).*"
                                       rf"`python -m train {name} --data DIR`"):
        resolve_weights(entry)
    with pytest.raises(ZooError, match=r"python -m zoo convert faceboxes_v2 --from PATH/FaceBoxesV2\.pth"):
        resolve_weights(registry.get("faceboxes_v2"))


def test_resolve_weights_reports_why_the_hub_failed(hub_server, hf_home, zoo_home, no_bundled):
    entry = _entry("facezoo-test/never-pushed", "a" * 40, None)
    with pytest.raises(ZooError, match=r"no weights.*Hub repo 'facezoo-test/never-pushed' not found"):
        resolve_weights(entry)


# ------------------------------------------------------------------------------------ server fidelity
def test_server_speaks_enough_of_the_hub_api(hub_server, hf_home, tiny_folder, repo_id):
    api = HfApi()
    sha = push(tiny_folder, repo_id, tag="v1")
    assert api.model_info(repo_id).sha == sha
    assert api.model_info(repo_id, revision="v1").sha == sha
    assert api.create_repo(repo_id, exist_ok=True).repo_id == repo_id
    api.upload_file(path_or_fileobj=b"x", path_in_repo="extra/deep/file.txt", repo_id=repo_id)
    top = {(type(e).__name__, e.path) for e in api.list_repo_tree(repo_id)}
    assert ("RepoFolder", "extra") in top and ("RepoFile", "config.json") in top
    assert [e.path for e in api.list_repo_tree(repo_id, "extra", recursive=True)] == ["extra/deep",
                                                                                       "extra/deep/file.txt"]
    from huggingface_hub.errors import HfHubHTTPError, RemoteEntryNotFoundError, RevisionNotFoundError

    with pytest.raises(HfHubHTTPError) as err:
        api.create_tag(repo_id, tag="v1")
    assert err.value.response.status_code == 409
    api.create_tag(repo_id, tag="v1", exist_ok=True)
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(repo_id, "config.json", revision="nope")
    with pytest.raises(RemoteEntryNotFoundError):
        hf_hub_download(repo_id, "missing.bin")
    assert not any(("xet" in p.lower()) or ("lfs" in p.lower()) for _, p in hub_server.requests)


# ------------------------------------------------------------------------------ faults survived (reliability)
@pytest.fixture
def faults(hub_server, hf_home, zoo_home, no_bundled, shared, monkeypatch):
    """The shared repo behind a Hub that misbehaves on demand; every wait is recorded instead of slept."""
    from huggingface_hub import file_download
    from huggingface_hub.utils import _http

    waits: dict[str, list[float]] = {"zoo": [], "client": []}
    monkeypatch.setattr(hub, "_sleep", waits["zoo"].append)
    client_sleep = types.SimpleNamespace(sleep=waits["client"].append)
    monkeypatch.setattr(_http, "time", client_sleep)            # the client's HTTP backoff (429, HEAD retries)
    monkeypatch.setattr(file_download, "time", client_sleep)    # its pause before resuming a dropped transfer
    digest = sha256_file(shared["folder"] / "model.safetensors")
    entry = _entry(shared["repo_id"], shared["sha"], digest)
    hub_server.clear_faults()
    yield types.SimpleNamespace(server=hub_server, entry=entry, digest=digest, waits=waits, shared=shared,
                                start=len(hub_server.requests))
    hub_server.clear_faults()


def _cached(f) -> Path | None:
    """The weights file a later load would find in the HF cache, if any."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(f.shared["repo_id"], "model.safetensors", revision=f.shared["sha"])
    return Path(found) if isinstance(found, str) else None


def _gets(f) -> int:
    return sum(m == "GET" and p.endswith("/model.safetensors") for m, p in f.server.requests[f.start:])


def test_fault_connection_dropped_mid_download(faults):
    drop = faults.server.inject("drop", "model.safetensors", times=1)
    path = resolve_weights(faults.entry)
    assert sha256_file(path) == faults.digest and drop.hits == 1
    assert faults.waits["client"] == [1] and faults.waits["zoo"] == []     # the client resumed the transfer


def test_fault_connection_dropped_every_time(faults, caplog):
    faults.server.inject("drop", "model.safetensors", times=-1)
    with pytest.raises(ZooError, match=r"connection to http://127\.0\.0\.1:\d+ broke off during the download of "
                                       r"model\.safetensors .*after 3 attempts"):
        resolve_weights(faults.entry)
    assert faults.waits["zoo"] == [hub.HUB_BACKOFF_S, 2 * hub.HUB_BACKOFF_S]     # bounded, with backoff
    assert _cached(faults) is None
    faults.server.clear_faults()
    assert sha256_file(resolve_weights(faults.entry)) == faults.digest          # and it recovers afterwards


@pytest.mark.parametrize("times", [1, -1])
def test_fault_http_500(faults, times):
    faults.server.inject("status", "model.safetensors", times=times, status=500)
    if times == 1:            # the client does not retry a GET that answers 500: the zoo does
        assert sha256_file(resolve_weights(faults.entry)) == faults.digest
        assert faults.waits["zoo"] == [hub.HUB_BACKOFF_S] and _gets(faults) == 2
        return
    with pytest.raises(ZooError, match=r"HTTP 500.*\(after 3 attempts\)"):
        resolve_weights(faults.entry)
    assert _gets(faults) == hub.HUB_ATTEMPTS and _cached(faults) is None


def test_fault_http_429_waits_for_retry_after(faults):
    faults.server.inject("status", "model.safetensors", times=2, status=429, retry_after=7)
    assert sha256_file(resolve_weights(faults.entry)) == faults.digest
    assert faults.waits["client"] == [8.0, 8.0] and faults.waits["zoo"] == []   # Retry-After (+1 s), by the client


def test_fault_truncated_file(faults):
    short = faults.server.inject("truncate", "model.safetensors", times=1)
    assert sha256_file(resolve_weights(faults.entry)) == faults.digest and short.hits == 1
    faults.server.inject("truncate", "model.safetensors", times=-1)
    hub.evict_cached(_cached(faults))              # start from an empty cache
    with pytest.raises(ZooError, match=r"download of model\.safetensors .* came back short .*after 3 attempts"):
        resolve_weights(faults.entry)
    assert _cached(faults) is None                 # a short file never enters the cache


def test_fault_altered_file_is_refused_and_never_cached(faults):
    once = faults.server.inject("alter", "model.safetensors", times=1)
    assert sha256_file(resolve_weights(faults.entry)) == faults.digest and once.hits == 1   # re-fetched once
    hub.evict_cached(_cached(faults))
    faults.server.inject("alter", "model.safetensors", times=-1)
    with pytest.raises(ZooError, match=rf"sha256 mismatch for {ENTRY}: expected {faults.digest}.*2 time\(s\).*"
                                       r"deleted from the HF cache"):
        resolve_weights(faults.entry)
    assert _cached(faults) is None
    faults.server.clear_faults()
    assert sha256_file(resolve_weights(faults.entry)) == faults.digest


def test_damaged_cache_file_is_replaced_not_trusted(faults):
    path = resolve_weights(faults.entry)
    blob = Path(os.path.realpath(path))
    blob.write_bytes(blob.read_bytes()[:-10] + b"0123456789")         # bit rot on disk, same size
    n = _gets(faults)
    again = resolve_weights(faults.entry)
    assert sha256_file(again) == faults.digest and _gets(faults) == n + 1


def test_zoo_load_says_what_happened(faults, monkeypatch):
    import zoo

    monkeypatch.setitem(registry.entries(), ENTRY, faults.entry)
    faults.server.inject("alter", "model.safetensors", times=-1)
    with pytest.raises(zoo.ZooError, match="sha256 mismatch.*refused"):
        zoo.load(ENTRY)
    faults.server.clear_faults()
    faults.server.inject("status", "model.safetensors", times=1, status=503)
    lm = zoo.load(ENTRY)
    assert lm.name == ENTRY and faults.waits["zoo"] == [hub.HUB_BACKOFF_S]


def test_snapshot_retries_like_load(faults):
    """from_pretrained's downloads (zoo.hub.snapshot) go through the same retries and error messages."""
    faults.server.inject("status", "config.json", times=1, status=502)
    faults.server.inject("drop", "model.safetensors", times=1)
    faults.server.inject("status", "README.md", times=-1, status=500)
    with pytest.raises(ZooError, match=r"cannot download README\.md of .*HTTP 500.*after 3 attempts"):
        snapshot(faults.shared["repo_id"], revision="v1")
    b = hub.HUB_BACKOFF_S
    assert faults.waits["zoo"] == [b, b, 2 * b] and faults.waits["client"] == [1]
    faults.server.clear_faults()
    folder = snapshot(faults.shared["repo_id"], revision="v1")
    assert folder.name == faults.shared["sha"] and sha256_file(folder / "model.safetensors") == faults.digest
