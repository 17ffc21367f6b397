"""Weights on disk and on the Hugging Face Hub, in the spirit of huggingface_hub's ModelHubMixin but small.

A model folder holds exactly three files: ``model.safetensors`` (the state dict), ``config.json`` (what
``build_model`` needs, plus provenance) and ``README.md`` (the model card, see ``render_card``). The same
layout is used for bundled weights (``zoo/weights/<name>/``), the user folder (``local_dir()/<name>/``) and
Hub repos (``save_folder`` -> ``push`` -> ``snapshot`` -> ``load_folder``).

``resolve_weights(entry)`` finds the file a registry entry points at and refuses any file whose sha256
differs from the one pinned in the registry. huggingface_hub is imported lazily: loading bundled or local
weights never needs it.
"""
from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path
from typing import Any


from .files import (BUNDLED_DIR, CARD_NAME, CONFIG_NAME, FOLDER_FILES, WEIGHTS_NAME, check_record,  # noqa: F401
                    load_folder, local_candidates, local_dir, on_disk, save_folder, sha256_file)
from .registry import Entry, ZooError, release_command

logger = logging.getLogger(__name__)

_COMMIT_SHA = re.compile(r"[0-9a-f]{40}")
# Downloads of one weights file, on top of huggingface_hub's own retries (it retries its HEAD on 429/5xx and
# network errors, a GET on 429 with Retry-After, and resumes a dropped transfer 5 times, but not a GET that
# answers 5xx nor a short file). Waits between attempts double from HUB_BACKOFF_S, capped at HUB_BACKOFF_MAX_S.
HUB_ATTEMPTS = 3
HUB_BACKOFF_S = 2.0
HUB_BACKOFF_MAX_S = 16.0
_sleep = time.sleep   # tests swap this for a recorder


# ---------------------------------------------------------------------------------------- resolving
def _hub_failures() -> tuple[type[BaseException], ...]:
    """Exceptions a download can end in when the network or the Hub says no (never programming errors)."""
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError

    failures: list[type[BaseException]] = [HfHubHTTPError, EntryNotFoundError, OSError, ValueError]
    for module in ("httpx2", "httpx"):  # the client's transport errors are not OSErrors
        try:
            failures.append(__import__(module).HTTPError)
        except (ImportError, AttributeError):
            pass
    return tuple(failures)


def _transient(exc: BaseException) -> bool:
    """Worth another download: a server error, a rate limit, a dropped or short transfer. Not: a missing
    repo/revision/file, a refused token, or an unreachable Hub (the client already retried its HEAD)."""
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError

    if isinstance(exc, (LocalEntryNotFoundError, EntryNotFoundError)):
        return False
    if isinstance(exc, HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else None
        return status in (408, 429, 500, 502, 503, 504)
    if isinstance(exc, (PermissionError, FileNotFoundError, IsADirectoryError, NotADirectoryError)):
        return False
    return isinstance(exc, OSError) or type(exc).__module__.split(".")[0] in ("httpx2", "httpx")


def evict_cached(path: Path) -> None:
    """Delete a file from the HF cache: the snapshot link and the blob it points at (a bad download must
    never be found again by a later load)."""
    blob = Path(os.path.realpath(path))
    for p in {path, blob}:
        try:
            p.unlink()
        except FileNotFoundError:
            pass
    logger.warning("removed %s from the HF cache", blob)


class HubUnavailable(ZooError):
    """The Hub could not provide a file (after any retries); ``cause`` is the client's last exception."""

    def __init__(self, why: str, cause: BaseException):
        super().__init__(why)
        self.cause = cause


def download(repo_id: str, filename: str, revision: str | None = None, token: str | None = None,
             sha256: str | None = None, label: str | None = None) -> Path:
    """hf_hub_download, retried (HUB_ATTEMPTS, with backoff) on transient failures, and checked against
    ``sha256`` when given: a file that differs is deleted from the HF cache and fetched once more; if it
    differs again, ZooError says so (the bad file is gone, so no later load can pick it up). Any other
    failure raises HubUnavailable with one readable line."""
    from huggingface_hub import hf_hub_download

    label = label or f"{repo_id}/{filename}"
    delay, mismatches = HUB_BACKOFF_S, 0
    for attempt in range(1, HUB_ATTEMPTS + 1):
        try:
            path = Path(hf_hub_download(repo_id, filename, revision=revision, token=token,
                                        force_download=attempt > 1))
        except _hub_failures() as exc:
            why = _describe_hub_error(exc, repo_id, revision, filename)
            if not _transient(exc) or attempt == HUB_ATTEMPTS:
                raise HubUnavailable(why + (f" (after {attempt} attempts)" if attempt > 1 else ""), exc) from exc
            logger.warning("%s: download attempt %d/%d failed (%s); retrying in %.0f s", label, attempt,
                           HUB_ATTEMPTS, why, delay)
            _sleep(delay)
            delay = min(2 * delay, HUB_BACKOFF_MAX_S)
            continue
        if not sha256:
            return path
        actual = sha256_file(path)
        if actual == sha256.lower():
            return path
        evict_cached(path)
        mismatches += 1
        if mismatches >= 2 or attempt == HUB_ATTEMPTS:   # once may be a bad transfer; twice is the file
            raise ZooError(f"{path}: sha256 mismatch for {label}: expected {sha256}, actual {actual}; the Hub at "
                           f"{_endpoint()} served {repo_id}/{filename}@{revision or 'main'} with other content "
                           f"{mismatches} time(s); the file was deleted from the HF cache and is refused "
                           "(re-publish the entry if the Hub's file is the right one)")
        logger.warning("%s: downloaded file has sha256 %s, not the pinned %s; deleted it, downloading again",
                       label, actual, sha256)
    raise AssertionError("unreachable")


def _from_hub(entry: Entry, cache_only: bool = False) -> tuple[Path | None, str]:
    """(path, "") from the HF cache or the Hub (see ``download``), or (None, why not). ``cache_only`` makes
    no request. A sha256 mismatch after download raises ZooError."""
    hub = entry.hub
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        return None, "huggingface_hub is not installed"
    if cache_only:
        try:
            return Path(hf_hub_download(hub.repo_id, hub.filename, revision=hub.revision, local_files_only=True)), ""
        except _hub_failures():
            return None, "not in the HF cache"
    try:
        return download(hub.repo_id, hub.filename, hub.revision, sha256=hub.sha256, label=entry.name), ""
    except HubUnavailable as exc:
        logger.info("%s: no weights from the Hub: %s", entry.name, exc)
        return None, str(exc)


def _how_to_make(entry: Entry) -> str:
    if entry.kind == "landmarker":
        train = f"train them with `python -m train {entry.name} --data DIR`"
        convert = release_command(entry)
        return f"{train}, or {convert}" if convert else train
    if entry.name == "faceboxes_v2":
        return "convert the original checkpoint with `python -m zoo convert faceboxes_v2 --from PATH/FaceBoxesV2.pth`"
    return f"put {entry.hub.filename} in {local_dir() / entry.name}"


def local_weights(entry: Entry) -> Path | None:
    """The weights file of ``entry`` already on this machine (HF cache at the pinned revision, bundled, local),
    or None. Never touches the network and does not hash the file: cheap enough for listings."""
    if entry.hub.revision:
        path, _ = _from_hub(entry, cache_only=True)
        if path is not None:
            return path
    return on_disk(entry)


def resolve_weights(entry: Entry) -> Path:
    """Path of ``entry``'s weights file, verified against ``entry.hub.sha256`` when that is set.

    Looks in order at (1) the Hub at the pinned ``entry.hub.revision`` (the HF cache first; a network or
    HTTP failure is logged at INFO and the search goes on), (2) the bundled copy
    ``zoo/weights/<name>/<filename>``, (3) ``local_dir()/<name>/<filename>``. A file whose sha256 differs
    from the pinned one raises ZooError and is never returned.

    When the file that (2)/(3) would give already has the pinned sha256, it is the very file (1) would
    download, so it is returned without a network request (the client's retries make an unreachable Hub
    cost ~20 s otherwise).
    """
    hub = entry.hub
    candidates = local_candidates(entry)
    fallback = next((path for _, path in candidates if path.is_file()), None)
    looked: list[str] = []
    path: Path | None = None
    verified = False       # a Hub file has been checked against the pin already
    if hub.revision:
        path, _ = _from_hub(entry, cache_only=True)
        if path is not None and hub.sha256:
            if sha256_file(path) != hub.sha256.lower():
                logger.warning("%s: the HF cache holds %s with the wrong sha256; removing it", entry.name, path)
                evict_cached(path)          # e.g. damaged on disk or written by another tool: fetch it afresh
                path = None
            verified = path is not None
        if path is None and fallback is not None and hub.sha256 and sha256_file(fallback) == hub.sha256.lower():
            return fallback
        if path is None:
            path, why = _from_hub(entry)     # verified against the pin inside
            verified = path is not None
            if path is None:
                looked.append(f"the Hub ({hub.repo_id}@{hub.revision}: {why})")
    else:
        looked.append("the Hub (no revision pinned in the registry)")
    if path is None:
        path = fallback
        looked += [f"{source} {candidate}" for source, candidate in candidates]
    if path is None:
        if entry.published:
            state = "has no weights on this machine and the Hub could not provide them (status: published)"
        else:
            state = f"has no weights yet (status: {entry.status})"
        raise ZooError(f"{entry.name} {state}; {_how_to_make(entry)}. Looked at: {'; '.join(looked)}.")
    if hub.sha256 and not verified:
        actual = sha256_file(path)
        if actual != hub.sha256.lower():
            raise ZooError(f"{path}: sha256 mismatch for {entry.name}: expected {hub.sha256}, actual {actual}; "
                           "refusing to load it (delete the file, or re-publish the entry if it is the right one)")
    if not hub.sha256:   # unpinned: a converted file is checked against the record its conversion wrote
        check_record(entry.name, path)
    logger.debug("%s: weights %s", entry.name, path)
    return path


# ------------------------------------------------------------------------------------------- the Hub
def _endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def repo_url(repo_id: str) -> str:
    """The repo's page on the Hub the client talks to (HF_ENDPOINT, or huggingface.co)."""
    return f"{_endpoint().rstrip('/')}/{repo_id}"


def _describe_hub_error(exc: BaseException, repo_id: str, revision: str | None, filename: str | None = None) -> str:
    """One readable line for a huggingface_hub failure."""
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    rev = revision or "main"
    where = _endpoint()
    if isinstance(exc, RevisionNotFoundError):
        return f"revision {rev!r} not found in Hub repo {repo_id!r} ({where})"
    if isinstance(exc, RepositoryNotFoundError):
        return (f"Hub repo {repo_id!r} not found at {where} (or it is private/gated and no valid token was "
                "given: pass token=... or set HF_TOKEN)")
    if isinstance(exc, LocalEntryNotFoundError):
        return (f"could not reach the Hub at {where} for {repo_id}/{filename}@{rev} and it is not in the HF "
                f"cache ({exc.__cause__ or exc})")
    if isinstance(exc, EntryNotFoundError):
        return f"{filename} not found in Hub repo {repo_id!r} at revision {rev!r}"
    if isinstance(exc, HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else "?"
        server = (exc.server_message or str(exc).splitlines()[0]).strip()
        if status in (401, 403):
            return (f"the Hub at {where} refused access to {repo_id!r} (HTTP {status}: {server}); pass token=... "
                    "or set HF_TOKEN / run `hf auth login`")
        return f"Hub request for {repo_id!r} failed (HTTP {status}: {server})"
    if isinstance(exc, HFValidationError):
        return f"invalid Hub repo id or revision {repo_id!r}@{rev}: {exc}"
    if isinstance(exc, ValueError):
        return f"{exc.__class__.__name__}: {exc}"
    first = str(exc).splitlines()[0] if str(exc) else ""
    if isinstance(exc, OSError) and "Consistency check failed" in first:
        return f"the download of {filename} from {where} came back short ({first})"
    if type(exc).__name__ in ("RemoteProtocolError", "ReadError", "ReadTimeout", "WriteError"):
        return f"the connection to {where} broke off during the download of {filename} ({type(exc).__name__}: {first})"
    return f"could not reach the Hub at {where} ({exc.__class__.__name__}: {exc})"


def snapshot(repo_id: str, revision: str | None = None, token: str | None = None) -> Path:
    """Download config.json, model.safetensors and README.md of a Hub repo; return their folder.

    The three files land in one snapshot folder of the HF cache: the revision is resolved to a commit by
    the first download and the others are pinned to it. README.md is optional (a repo without a card still
    loads); a missing config.json or model.safetensors raises ZooError, as do unknown repos, revisions and
    connection failures.
    """
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    def get(filename: str, rev: str | None) -> Path:
        try:
            return download(repo_id, filename, rev, token=token)      # retried like zoo.load's downloads
        except HubUnavailable as exc:
            raise ZooError(f"cannot download {filename} of {repo_id}: {exc}") from exc.cause

    config = get(CONFIG_NAME, revision)
    commit = config.parent.name  # <cache>/models--ns--name/snapshots/<commit>/config.json
    pinned = commit if _COMMIT_SHA.fullmatch(commit) else revision
    get(WEIGHTS_NAME, pinned)
    try:
        get(CARD_NAME, pinned)
    except ZooError as exc:
        cause = exc.__cause__
        if not isinstance(cause, EntryNotFoundError) or isinstance(cause, LocalEntryNotFoundError):
            raise
        logger.info("%s@%s has no %s", repo_id, pinned, CARD_NAME)
    return config.parent


def push(folder: str | os.PathLike, repo_id: str, token: str | None = None, revision: str | None = None,
         tag: str | None = None, private: bool = False, commit_message: str | None = None) -> str:
    """Upload a model folder (exactly model.safetensors, config.json, README.md) to a Hub repo.

    Creates the repo if needed (``private`` applies to a new repo), commits to branch ``revision``
    (default main; created from main when missing), then tags the commit with ``tag`` if given.
    Returns the commit sha (40 hex); when no file changed, the client makes no commit and this is the
    branch's current head.
    """
    from huggingface_hub import HfApi

    folder = Path(folder)
    missing = [name for name in FOLDER_FILES if not (folder / name).is_file()]
    if missing:
        raise ZooError(f"{folder}: missing {', '.join(missing)}; a pushable folder holds "
                       f"{', '.join(FOLDER_FILES)} (zoo.hub.save_folder writes them)")
    branch = revision or "main"
    if _COMMIT_SHA.fullmatch(branch):
        raise ZooError(f"push needs a branch name, not a commit ({branch}); tag commits with tag=...")
    api = HfApi(token=token)
    step = "create the repo"
    try:
        api.create_repo(repo_id, exist_ok=True, private=private)
        if branch != "main":
            step = f"create branch {branch!r}"
            api.create_branch(repo_id, branch=branch, exist_ok=True)
        step = "upload the folder"
        info = api.upload_folder(
            folder_path=str(folder), repo_id=repo_id, revision=branch, allow_patterns=list(FOLDER_FILES),
            commit_message=commit_message or f"Upload {folder.name} with zoo.hub.push",
        )
        sha = info.oid
        if tag:
            step = f"tag {sha} as {tag!r} (the commit itself is pushed)"
            api.create_tag(repo_id, tag=tag, revision=sha)
    except _hub_failures() as exc:
        from huggingface_hub.errors import HfHubHTTPError

        if isinstance(exc, HfHubHTTPError) and exc.response is not None and exc.response.status_code == 409:
            why = f"conflict: {(exc.server_message or str(exc)).strip()}"
        else:
            why = _describe_hub_error(exc, repo_id, branch)
        raise ZooError(f"push of {folder} to {repo_id} failed to {step}: {why}") from exc
    logger.info("pushed %s to %s@%s (%s)", folder, repo_id, branch, sha)
    return sha


# --------------------------------------------------------------------------------------- model card
_HUB_LICENSES = {
    "apache-2.0", "mit", "bsd", "bsd-2-clause", "bsd-3-clause", "bsd-3-clause-clear", "cc0-1.0", "cc-by-2.0",
    "cc-by-3.0", "cc-by-4.0", "cc-by-sa-3.0", "cc-by-sa-4.0", "cc-by-nc-2.0", "cc-by-nc-3.0", "cc-by-nc-4.0",
    "cc-by-nc-nd-3.0", "cc-by-nc-nd-4.0", "cc-by-nc-sa-2.0", "cc-by-nc-sa-3.0", "cc-by-nc-sa-4.0", "gpl-2.0",
    "gpl-3.0", "lgpl-3.0", "agpl-3.0", "mpl-2.0", "openrail", "creativeml-openrail-m", "unlicense", "other",
    "unknown",
}
_DATASET_NAMES = {"300w": "300W", "wflw": "WFLW", "cofw": "COFW", "aflw": "AFLW"}
_METRIC_NAMES = {"nme": "NME", "fr": "Failure rate", "auc": "AUC"}
_NOT_METRICS = {"n", "split", "dataset", "command", "norm", "threshold", "fr_threshold", "auc_threshold", "limit"}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "other"


def _metric_items(metrics: dict[str, Any]) -> list[tuple[str, float]]:
    keys = [k for k in ("nme", "fr", "auc") if k in metrics]
    keys += sorted(k for k, v in metrics.items() if k not in keys and k not in _NOT_METRICS
                   and not k.startswith("n_")      # face counts (n_int8), like n
                   and isinstance(v, (int, float)) and not isinstance(v, bool))
    return [(k, float(metrics[k])) for k in keys]


def render_card(config: dict[str, Any], metrics: dict[str, Any] | None = None, body: str = "") -> str:
    """A model card: YAML front matter the Hub reads, then markdown (title, loading, metrics, ``body``).

    ``config`` supplies name, arch, dataset, license (default "other"; then ``license_name`` and
    ``license_link`` come from config or default to the dataset's terms and this card's License section).
    ``metrics`` is the registry's form: ``{"nme": .., "fr": .., "auc": .., "n": .., "split": ..,
    "dataset": .., "command": ..}``; nme, fr and auc each become one model-index result, and every
    numeric entry (but ``n`` and thresholds) a row of the card's metrics table.
    """
    import yaml  # PyYAML, a dependency of huggingface_hub

    metrics = dict(metrics or {})
    arch = str(config.get("arch", "model"))
    name = str(config.get("name") or arch)
    dataset = config.get("dataset") or metrics.get("dataset")
    lic_raw = str(config.get("license") or "other").strip()
    lic = lic_raw.split("(")[0].strip().lower()  # "BSD-3-Clause (OpenCV)" -> "bsd-3-clause"
    if lic not in _HUB_LICENSES:
        lic = "other"

    meta: dict[str, Any] = {"library_name": "pytorch", "license": lic}
    if lic == "other":
        if config.get("license_name"):
            license_name = str(config["license_name"])
        elif lic_raw.lower() != "other":
            license_name = lic_raw
        else:
            license_name = f"{dataset}-terms" if dataset else "other"
        meta["license_name"] = _slug(license_name)
        meta["license_link"] = str(config.get("license_link") or "README.md#license")
    tags = ["facial-landmark-detection", "face-alignment", arch, "safetensors"]
    meta["tags"] = list(dict.fromkeys(t for t in tags if t))
    if dataset:
        meta["datasets"] = [str(dataset)]
    meta["pipeline_tag"] = "keypoint-detection"

    items = _metric_items(metrics)  # all numeric entries go in the card's table
    indexed = [(k, v) for k, v in items if k in _METRIC_NAMES]  # nme/fr/auc go in model-index too
    m_dataset = str(metrics.get("dataset") or dataset or "unknown")
    split = str(metrics.get("split") or "test")
    if indexed:
        ds = {"name": _DATASET_NAMES.get(m_dataset.lower(), m_dataset), "type": m_dataset, "split": split}
        meta["model-index"] = [{"name": name, "results": [  # one result per metric
            {"task": {"type": "keypoint-detection", "name": "Facial landmark detection"}, "dataset": dict(ds),
             "metrics": [{"type": k, "value": v, "name": f"{_METRIC_NAMES.get(k, k)} ({split})"}]}
            for k, v in indexed]}]
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, default_flow_style=False)

    pretty_ds = _DATASET_NAMES.get(str(dataset).lower(), str(dataset)) if dataset else None
    lines = [f"# {name}", ""]
    what = f"`{arch}` facial landmark model"
    if config.get("num_points"):
        what += f" ({config['num_points']} points)"
    lines += [what + (f" trained on {pretty_ds}." if pretty_ds else "."), ""]
    lines += ["## How to load", "", "```python", "import zoo", "", f'model = zoo.load("{name}")', "```", "",
              "The weights are `model.safetensors`; `config.json` holds the architecture arguments.", ""]
    lines += ["## Metrics", ""]
    if items:
        n = metrics.get("n")
        scope = f"{_DATASET_NAMES.get(m_dataset.lower(), m_dataset)} {split} split" + (f", {n} faces" if n else "")
        lines += [f"Measured on the {scope}:", ""]
        lines += ["| Metric | Value |", "|---|---|"]
        lines += [f"| {_METRIC_NAMES.get(k, k)} | {v:.4f} |" for k, v in items]
        lines += [""]
        if metrics.get("command"):
            lines += ["Measured with:", "", "```bash", str(metrics["command"]), "```", ""]
    else:
        lines += ["No metrics measured yet.", ""]
    if body.strip():
        lines += [body.strip(), ""]
    if lic == "other" and meta["license_link"] == "README.md#license" and "## License" not in body:
        terms = config.get("license_terms") or config.get("notes") or (
            f"These weights inherit the terms of the {pretty_ds} dataset." if pretty_ds else "See the source.")
        lines += ["## License", "", str(terms), ""]
    return f"---\n{front}---\n\n" + "\n".join(lines).rstrip("\n") + "\n"
