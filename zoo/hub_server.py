"""A small Hugging Face Hub look-alike: a real HTTP server that the real ``huggingface_hub`` client (2.x) can
create repos on, commit to, tag, list and download from. The tests run it in memory on 127.0.0.1; an offline or
private lab runs it with a folder that keeps its repos (``python -m zoo hub serve --root DIR``) and points the
client at it with ``HF_ENDPOINT``. It checks no user accounts: a ``token`` is the one key to every repo.

Only the parts of the REST API the client uses for plain git files are spoken:

=======================================================  ==========================================
POST   /api/repos/create                                  create_repo (409 + {"url"} when it exists)
DELETE /api/repos/delete                                  delete_repo
POST   /api/validate-yaml                                 README.md front matter check (upload)
GET    /api/whoami-v2                                     whoami
GET    /api/{type}s/{ns}/{name}[/revision/{rev}]          repo_info / model_info
POST   /api/{type}s/{ns}/{name}/preupload/{rev}           always uploadMode "regular" (no LFS, no Xet)
POST   /api/{type}s/{ns}/{name}/commit/{rev}              NDJSON: header / file / deletedFile / deletedFolder
GET    /api/{type}s/{ns}/{name}/tree/{rev}[/{path}]       list_repo_tree / list_repo_files
GET    /api/{type}s/{ns}/{name}/refs                      list_repo_refs
GET    /api/{type}s/{ns}/{name}/commits/{rev}             list_repo_commits
POST   /api/{type}s/{ns}/{name}/tag/{rev}                 create_tag;  DELETE .../tag/{tag}: delete_tag
POST   /api/{type}s/{ns}/{name}/branch/{branch}           create_branch;  DELETE: delete_branch
HEAD   /[{type}s/]{ns}/{name}/resolve/{rev}/{path}        file metadata: ETag, X-Repo-Commit, Content-Length
GET    same                                               file content (Range supported)
=======================================================  ==========================================

Faults for reliability tests (``inject``): a download (GET .../resolve/...) can be answered with an HTTP
status (500, 429 + Retry-After, ...), dropped mid-body (the connection closes after half the bytes), truncated
(a complete response that is short), or altered (same length, one byte flipped). Each fault hits the next
``times`` matching requests and counts its ``hits``.

Errors carry ``X-Error-Code`` (RepoNotFound, RevisionNotFound, EntryNotFound), ``X-Error-Message`` and a JSON
``{"error": ...}`` body, which is what the client turns into its typed exceptions. Started with ``token=...``,
every request must carry ``Authorization: Bearer <token>`` (401 otherwise). Repo ids must be ``namespace/name``.

    with HubServer() as hub:                  # or hub = HubServer().start(); ...; hub.stop()
        HfApi(endpoint=hub.url).create_repo("me/model")
"""
from __future__ import annotations

import base64
import hashlib
import itertools
import json
import os
import socket
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

GITATTRIBUTES = (
    b"*.bin filter=lfs diff=lfs merge=lfs -text\n"
    b"*.pt filter=lfs diff=lfs merge=lfs -text\n"
    b"*.pth filter=lfs diff=lfs merge=lfs -text\n"
    b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
)
REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}


def git_blob_oid(content: bytes) -> str:
    """git's object id of a blob (what the Hub reports as a regular file's oid and ETag)."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclass
class Commit:
    sha: str
    files: dict[str, bytes]
    title: str
    message: str
    parent: str | None
    date: str = field(default_factory=_now)


@dataclass
class Repo:
    repo_id: str
    repo_type: str
    private: bool
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    created: str = field(default_factory=_now)

    def resolve(self, rev: str) -> str | None:
        """Branch, tag, refs/heads/x, refs/tags/x or full commit sha -> commit sha."""
        for prefix, table in (("refs/heads/", self.branches), ("refs/tags/", self.tags)):
            if rev.startswith(prefix):
                return table.get(rev[len(prefix):])
        if rev in self.branches:
            return self.branches[rev]
        if rev in self.tags:
            return self.tags[rev]
        if rev in self.commits:
            return rev
        return None


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None,
                 extra: dict[str, Any] | None = None):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code
        self.headers = headers or {}
        self.extra = extra or {}


FAULT_KINDS = ("status", "drop", "truncate", "alter")


@dataclass
class Fault:
    kind: str                    # one of FAULT_KINDS
    path: str | None = None      # file path in the repo it applies to; None: any file
    times: int = 1               # how many matching requests it hits; -1: all of them
    status: int = 500            # for kind "status"
    retry_after: int | None = None   # Retry-After header (seconds) for kind "status"
    methods: tuple[str, ...] = ("GET",)
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        return self.times != 0 and method in self.methods and self.path in (None, path)


def _repo_not_found(repo_id: str) -> HubError:
    return HubError(404, f"Repository not found: {repo_id}", "RepoNotFound")


class HubServer:
    """A Hub in memory, or kept in ``root`` (state.json + content-addressed blobs/, written after every change and
    read back at start). ``url`` is the endpoint to give the client; ``requests`` logs (method, path)."""

    def __init__(self, token: str | None = None, port: int = 0, user: str = "tester", host: str = "127.0.0.1",
                 root: str | Path | None = None):
        self.token = token
        self.user = user
        self.host = host
        self.root = Path(root) if root is not None else None
        self.repos: dict[tuple[str, str], Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.RLock()
        self._counter = itertools.count()
        self._port = port
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._conns: set[socket.socket] = set()
        self.faults: list[Fault] = []
        if self.root is not None:
            self._load()

    # ------------------------------------------------------------------------------- persistence
    def _load(self) -> None:
        state = self.root / "state.json"
        if not state.is_file():
            return
        data = json.loads(state.read_text())
        blobs = self.root / "blobs"
        for r in data["repos"]:
            repo = Repo(r["repo_id"], r["repo_type"], r["private"], branches=r["branches"], tags=r["tags"],
                        created=r["created"])
            for c in r["commits"]:
                files = {path: (blobs / oid).read_bytes() for path, oid in c["files"].items()}
                repo.commits[c["sha"]] = Commit(c["sha"], files, c["title"], c["message"], c["parent"], c["date"])
            self.repos[(repo.repo_type, repo.repo_id)] = repo
        self._counter = itertools.count(data.get("counter", 0))

    def persist(self) -> None:
        """Write the repos to ``root`` (no-op in memory): new blobs first, then state.json atomically."""
        if self.root is None:
            return
        with self._lock:
            blobs = self.root / "blobs"
            blobs.mkdir(parents=True, exist_ok=True)
            repos = []
            for repo in self.repos.values():
                commits = []
                for c in repo.commits.values():
                    oids = {}
                    for path, content in c.files.items():
                        oid = oids[path] = hashlib.sha256(content).hexdigest()
                        if not (blobs / oid).exists():
                            tmp = blobs / f"{oid}.tmp"
                            tmp.write_bytes(content)
                            os.replace(tmp, blobs / oid)
                    commits.append({"sha": c.sha, "files": oids, "title": c.title, "message": c.message,
                                    "parent": c.parent, "date": c.date})
                repos.append({"repo_id": repo.repo_id, "repo_type": repo.repo_type, "private": repo.private,
                              "branches": repo.branches, "tags": repo.tags, "created": repo.created,
                              "commits": commits})
            counter = next(self._counter)
            self._counter = itertools.count(counter + 1)
            tmp = self.root / "state.json.tmp"
            tmp.write_text(json.dumps({"repos": repos, "counter": counter + 1}))
            os.replace(tmp, self.root / "state.json")

    # ------------------------------------------------------------------------------------ faults
    def inject(self, kind: str, path: str | None = None, times: int = 1, status: int = 500,
               retry_after: int | None = None, methods: tuple[str, ...] = ("GET",)) -> Fault:
        """Make the next ``times`` downloads of ``path`` fail as ``kind`` (see the module docstring)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {FAULT_KINDS}, not {kind!r}")
        fault = Fault(kind, path, times, status, retry_after, tuple(methods))
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.hits += 1
                    if fault.times > 0:
                        fault.times -= 1
                    return fault
        return None

    # ----------------------------------------------------------------------------------- lifecycle
    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("server not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "HubServer":
        hub = self

        class Handler(_Handler):
            server_hub = hub

        self._httpd = ThreadingHTTPServer((self.host, self._port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="hub-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and drop open keep-alive connections, so clients see the server as gone."""
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        with self._lock:
            conns, self._conns = list(self._conns), set()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(timeout=5)
        self._httpd = None

    def __enter__(self) -> "HubServer":
        return self.start() if self._httpd is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------------------------ state
    def _new_sha(self, parent: str | None, files: dict[str, bytes], title: str) -> str:
        h = hashlib.sha1()
        h.update(f"{next(self._counter)}\0{parent}\0{title}\0".encode())
        for path in sorted(files):
            h.update(f"{path}\0{git_blob_oid(files[path])}\0".encode())
        return h.hexdigest()

    def _commit(self, repo: Repo, parent: str | None, files: dict[str, bytes], title: str, message: str = "") -> str:
        sha = self._new_sha(parent, files, title)
        repo.commits[sha] = Commit(sha, files, title, message, parent)
        return sha

    def create_repo(self, repo_id: str, repo_type: str = "model", private: bool = False) -> Repo:
        with self._lock:
            repo = Repo(repo_id, repo_type, private)
            repo.branches["main"] = self._commit(repo, None, {".gitattributes": GITATTRIBUTES}, "initial commit")
            self.repos[(repo_type, repo_id)] = repo
            return repo

    def get_repo(self, repo_type: str, repo_id: str) -> Repo:
        repo = self.repos.get((repo_type, repo_id))
        if repo is None:
            raise _repo_not_found(repo_id)
        return repo

    def repo_url(self, repo: Repo) -> str:
        return f"{self.url}/{URL_PREFIX[repo.repo_type]}{repo.repo_id}"


def _front_matter(text: str) -> tuple[str | None, str | None]:
    """(yaml text, error) of a README's leading ``---`` block; (None, None) when it has none."""
    lines = text.lstrip("\ufeff").splitlines()
    if not lines or lines[0].strip() != "---":
        return None, None
    for i, line in enumerate(lines[1:], 1):
        if line.strip() == "---":
            return "\n".join(lines[1:i]), None
    return None, "metadata block opened with '---' is never closed"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_hub: HubServer  # set on the subclass made by HubServer.start

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without this, Nagle + delayed ACK cost ~40 ms a request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server_hub._lock:
            self.server_hub._conns.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server_hub._lock:
                self.server_hub._conns.discard(self.connection)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    # --------------------------------------------------------------------------------- plumbing
    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes = b"", content_type: str = "application/json",
              headers: dict[str, str] | None = None, length: int | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _send_json(self, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(data).encode(), headers=headers)

    def _send_error(self, err: HubError) -> None:
        headers = {"X-Error-Message": err.message.replace("\n", " "), **err.headers}
        if err.code:
            headers["X-Error-Code"] = err.code
        self._send_json({"error": err.message, **err.extra}, err.status, headers)

    def _dispatch(self, method: str) -> None:
        hub = self.server_hub
        split = urlsplit(self.path)
        raw_parts = [p for p in split.path.split("/")[1:]]
        self.query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        with hub._lock:
            hub.requests.append((method, split.path))
        try:
            # Read the body up front so keep-alive connections stay in sync even on errors.
            self._raw = self._body() if method in ("POST", "PUT", "DELETE") else b""
            self._check_auth()
            if raw_parts and raw_parts[0] == "api":
                self._api(method, raw_parts[1:])
                if method in ("POST", "PUT", "DELETE"):
                    hub.persist()
            else:
                self._resolve(method, raw_parts)
        except HubError as err:
            self._send_error(err)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as exc:  # a bug here should read as one, not as a hang
            self._send_error(HubError(400, f"hub_server could not handle {method} {split.path}: {exc!r}"))

    def _json(self) -> dict[str, Any]:
        try:
            data = json.loads(self._raw or b"{}")
        except json.JSONDecodeError as exc:
            raise HubError(400, f"request body is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise HubError(400, "request body must be a JSON object")
        return data

    def _check_auth(self) -> None:
        token = self.server_hub.token
        if token is None:
            return
        auth = self.headers.get("Authorization", "")
        if not auth:
            raise HubError(401, "Authorization header is missing: this Hub needs a token")
        if auth != f"Bearer {token}":
            raise HubError(401, "Invalid credentials in Authorization header")

    # ------------------------------------------------------------------------------------- API
    def _api(self, method: str, parts: list[str]) -> None:
        hub = self.server_hub
        if parts == ["repos", "create"] and method == "POST":
            return self._create_repo()
        if parts == ["repos", "delete"] and method == "DELETE":
            return self._delete_repo()
        if parts == ["validate-yaml"] and method == "POST":
            return self._validate_yaml()
        if parts == ["whoami-v2"] and method == "GET":
            return self._send_json({"type": "user", "name": hub.user, "orgs": [],
                                    "auth": {"type": "access_token", "accessToken": {"role": "write"}}})
        if len(parts) < 3 or parts[0] not in REPO_TYPES:
            raise HubError(404, f"unknown API route /api/{'/'.join(parts)}")
        repo_type = REPO_TYPES[parts[0]]
        repo_id = f"{unquote(parts[1])}/{unquote(parts[2])}"
        rest = parts[3:]
        with hub._lock:
            repo = hub.get_repo(repo_type, repo_id)
            if not rest and method == "GET":
                return self._repo_info(repo, "main")
            action = rest[0] if rest else ""
            arg = unquote(rest[1]) if len(rest) > 1 else None
            if action == "revision" and method == "GET" and arg is not None:
                return self._repo_info(repo, unquote("/".join(rest[1:])))
            if action == "preupload" and method == "POST" and arg is not None:
                return self._preupload(repo, arg)
            if action == "commit" and method == "POST" and arg is not None:
                return self._commit(repo, arg)
            if action == "tree" and method == "GET" and arg is not None:
                return self._tree(repo, arg, unquote("/".join(rest[2:])))
            if action == "refs" and method == "GET":
                return self._refs(repo)
            if action == "commits" and method == "GET" and arg is not None:
                return self._commits(repo, arg)
            if action == "tag" and arg is not None:
                return self._tag(repo, method, arg)
            if action == "branch" and arg is not None:
                return self._branch(repo, method, arg)
        raise HubError(404, f"unknown API route {method} /api/{'/'.join(parts)}")

    def _create_repo(self) -> None:
        hub = self.server_hub
        data = self._json()
        name = data.get("name")
        if not isinstance(name, str) or not name:
            raise HubError(400, "'name' is required")
        namespace = data.get("organization") or hub.user
        repo_type = data.get("type") or "model"
        if repo_type not in URL_PREFIX:
            raise HubError(400, f"unsupported repo type {repo_type!r}")
        private = data.get("visibility") == "private" or bool(data.get("private"))
        repo_id = f"{namespace}/{name}"
        with hub._lock:
            if (repo_type, repo_id) in hub.repos:
                repo = hub.repos[(repo_type, repo_id)]
                # The client reads "url" from the 409 body when exist_ok=True.
                raise HubError(409, f"You already created this {repo_type} repo", extra={"url": hub.repo_url(repo)})
            repo = hub.create_repo(repo_id, repo_type, private)
        self._send_json({"url": hub.repo_url(repo), "name": repo_id, "id": repo_id})

    def _delete_repo(self) -> None:
        hub = self.server_hub
        data = self._json()
        repo_id = f"{data.get('organization') or hub.user}/{data.get('name')}"
        with hub._lock:
            if hub.repos.pop((data.get("type") or "model", repo_id), None) is None:
                raise _repo_not_found(repo_id)
        self._send_json({})

    def _validate_yaml(self) -> None:
        content = self._json().get("content", "")
        text, error = _front_matter(content)
        if error is None and text is not None:
            try:
                import yaml
            except ImportError:  # cannot check without PyYAML: accept
                yaml = None
            if yaml is not None:
                try:
                    meta = yaml.safe_load(text)
                    if meta is not None and not isinstance(meta, dict):
                        error = "metadata must be a YAML mapping"
                except yaml.YAMLError as exc:
                    error = f"invalid YAML: {exc}"
        if error is not None:
            return self._send_json({"errors": [{"message": error}], "warnings": []}, 400)
        warnings = [] if text is not None else [{"message": "empty or missing yaml metadata in repo card"}]
        self._send_json({"errors": [], "warnings": warnings})

    def _rev(self, repo: Repo, rev: str) -> str:
        sha = repo.resolve(rev)
        if sha is None:
            raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        return sha

    def _branch_head(self, repo: Repo, branch: str) -> str:
        if branch not in repo.branches:
            raise HubError(404, f"Invalid rev id: {branch} (commits go to an existing branch)", "RevisionNotFound")
        return repo.branches[branch]

    def _repo_info(self, repo: Repo, rev: str) -> None:
        sha = self._rev(repo, rev)
        files = repo.commits[sha].files
        self._send_json({
            "_id": hashlib.md5(repo.repo_id.encode()).hexdigest()[:24],
            "id": repo.repo_id,
            "modelId": repo.repo_id,
            "author": repo.repo_id.split("/")[0],
            "sha": sha,
            "lastModified": repo.commits[sha].date,
            "createdAt": repo.created,
            "private": repo.private,
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": [{"rfilename": path} for path in sorted(files)],
        })

    def _preupload(self, repo: Repo, branch: str) -> None:
        sha = self._branch_head(repo, branch)
        files = repo.commits[sha].files
        out = []
        for item in self._json().get("files", []):
            path = item["path"]
            entry = {"path": path, "uploadMode": "regular", "shouldIgnore": False}
            if path in files:
                entry["oid"] = git_blob_oid(files[path])
            out.append(entry)
        self._send_json({"files": out, "commitOid": sha})

    def _commit(self, repo: Repo, branch: str) -> None:
        hub = self.server_hub
        if self.query.get("create_pr"):
            raise HubError(400, "hub_server does not support pull requests")
        head = self._branch_head(repo, branch)
        files = dict(repo.commits[head].files)
        header: dict[str, Any] | None = None
        for n, line in enumerate(self._raw.splitlines(), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                key, value = item["key"], item["value"]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise HubError(400, f"commit payload line {n} is not a {{key, value}} JSON object") from None
            if key == "header":
                header = value
            elif key == "file":
                if value.get("encoding") != "base64":
                    raise HubError(400, f"unsupported encoding {value.get('encoding')!r} for {value.get('path')}")
                files[value["path"]] = base64.b64decode(value["content"])
            elif key == "deletedFile":
                if value["path"] not in files:
                    raise HubError(404, f"A file with this name doesn't exist: {value['path']}", "EntryNotFound")
                del files[value["path"]]
            elif key == "deletedFolder":
                prefix = value["path"].rstrip("/") + "/"
                files = {p: c for p, c in files.items() if not p.startswith(prefix)}
            elif key == "lfsFile":
                raise HubError(400, f"hub_server takes no LFS files (it answered uploadMode 'regular'): {value}")
            else:
                raise HubError(400, f"unknown commit operation {key!r}")
        if header is None or not header.get("summary"):
            raise HubError(400, "commit payload needs a header line with a summary")
        parent = header.get("parentCommit")
        if parent and not head.startswith(parent):
            raise HubError(412, f"parentCommit {parent} is not the head of {branch} ({head})")
        sha = hub._commit(repo, head, files, header["summary"], header.get("description", ""))
        repo.branches[branch] = sha
        self._send_json({"success": True, "commitOid": sha, "commitUrl": f"{hub.repo_url(repo)}/commit/{sha}",
                         "hookOutput": ""})

    def _tree(self, repo: Repo, rev: str, path: str) -> None:
        sha = self._rev(repo, rev)
        files = repo.commits[sha].files
        path = path.strip("/")
        prefix = f"{path}/" if path else ""
        if path and not any(p.startswith(prefix) for p in files):
            raise HubError(404, f"Path {path} not found in {repo.repo_id}@{rev}", "EntryNotFound",
                           headers={"X-Repo-Commit": sha})
        recursive = self.query.get("recursive", "").lower() in ("1", "true")
        entries: dict[str, dict[str, Any]] = {}
        for p in sorted(files):
            if not p.startswith(prefix):
                continue
            rel = p[len(prefix):].split("/")
            depth = len(rel) if recursive else 1
            for i in range(1, min(depth, len(rel) - 1) + 1):  # folders on the way
                folder = prefix + "/".join(rel[:i])
                entries.setdefault(folder, {"type": "directory", "path": folder, "size": 0,
                                            "oid": hashlib.sha1(folder.encode()).hexdigest()})
            if recursive or len(rel) == 1:
                entries[p] = {"type": "file", "path": p, "size": len(files[p]), "oid": git_blob_oid(files[p])}
        self._send_json(list(entries.values()))

    def _refs(self, repo: Repo) -> None:
        self._send_json({
            "branches": [{"name": n, "ref": f"refs/heads/{n}", "targetCommit": s} for n, s in repo.branches.items()],
            "converts": [],
            "tags": [{"name": n, "ref": f"refs/tags/{n}", "targetCommit": s} for n, s in repo.tags.items()],
            "pullRequests": [],
        })

    def _commits(self, repo: Repo, rev: str) -> None:
        sha: str | None = self._rev(repo, rev)
        out = []
        while sha is not None:
            c = repo.commits[sha]
            out.append({"id": c.sha, "title": c.title, "message": c.message, "date": c.date,
                        "authors": [{"user": self.server_hub.user}]})
            sha = c.parent
        self._send_json(out)

    def _tag(self, repo: Repo, method: str, name: str) -> None:
        if method == "DELETE":
            if repo.tags.pop(name, None) is None:
                raise HubError(404, f"Tag {name} not found", "RevisionNotFound")
            return self._send_json({})
        if method != "POST":
            raise HubError(405, f"{method} not allowed on tags")
        sha = self._rev(repo, name)  # here the path names the revision to tag
        tag = self._json().get("tag")
        if not isinstance(tag, str) or not tag:
            raise HubError(400, "'tag' is required")
        if tag in repo.tags or tag in repo.branches:
            raise HubError(409, f"Tag {tag} already exists")
        repo.tags[tag] = sha
        self._send_json({})

    def _branch(self, repo: Repo, method: str, name: str) -> None:
        if method == "DELETE":
            if name == "main" or repo.branches.pop(name, None) is None:
                raise HubError(404 if name != "main" else 403, f"cannot delete branch {name}", "RevisionNotFound")
            return self._send_json({})
        if method != "POST":
            raise HubError(405, f"{method} not allowed on branches")
        if name in repo.branches:
            raise HubError(409, f"Branch {name} already exists")
        start = self._json().get("startingPoint") or "main"
        repo.branches[name] = self._rev(repo, start)
        self._send_json({})

    # ---------------------------------------------------------------------------------- resolve
    def _resolve(self, method: str, parts: list[str]) -> None:
        if method not in ("GET", "HEAD"):
            raise HubError(405, f"{method} not allowed here")
        repo_type = "model"
        if parts and parts[0] in ("datasets", "spaces"):
            repo_type, parts = REPO_TYPES[parts[0]], parts[1:]
        if len(parts) < 5 or parts[2] != "resolve":
            raise HubError(404, f"not found: /{'/'.join(parts)}")
        repo_id = f"{unquote(parts[0])}/{unquote(parts[1])}"
        rev, path = unquote(parts[3]), unquote("/".join(parts[4:]))
        hub = self.server_hub
        with hub._lock:
            repo = hub.get_repo(repo_type, repo_id)
            sha = self._rev(repo, rev)
            content = repo.commits[sha].files.get(path)
        if content is None:
            raise HubError(404, f"Entry not found: {path} in {repo_id}@{rev}", "EntryNotFound",
                           headers={"X-Repo-Commit": sha})
        headers = {"ETag": f'"{git_blob_oid(content)}"', "X-Repo-Commit": sha, "Accept-Ranges": "bytes",
                   "Content-Disposition": f'inline; filename="{path.rsplit("/", 1)[-1]}"'}
        start, end, status = 0, len(content), 200
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes=") and method == "GET":
            first, _, last = rng[len("bytes="):].split(",")[0].partition("-")
            start = int(first) if first else max(len(content) - int(last), 0)
            end = int(last) + 1 if first and last else len(content)
            if start >= len(content) and content:
                raise HubError(416, "Requested range not satisfiable",
                               headers={"Content-Range": f"bytes */{len(content)}"})
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{len(content)}"
        fault = hub._take_fault(method, path)
        if fault is not None:
            return self._serve_fault(fault, status, content[start:end], headers)
        self._send(status, content[start:end], "application/octet-stream", headers)

    def _serve_fault(self, fault: Fault, status: int, body: bytes, headers: dict[str, str]) -> None:
        if fault.kind == "status":
            extra = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            raise HubError(fault.status, f"injected fault: HTTP {fault.status}", headers=extra)
        if fault.kind == "truncate":     # a complete, well-formed response that is simply short
            return self._send(status, body[:len(body) // 2], "application/octet-stream", headers)
        if fault.kind == "alter":        # same length, one byte flipped: only a hash can tell
            mid = len(body) // 2
            body = body[:mid] + bytes([body[mid] ^ 0xFF]) + body[mid + 1:] if body else body
            return self._send(status, body, "application/octet-stream", headers)
        # "drop": promise the whole body, send half of it, then close the connection
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body[:len(body) // 2])
        self.wfile.flush()
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def point_client_at(monkeypatch: Any, url: str) -> None:
    """Point the huggingface_hub client at ``url`` (a pytest MonkeyPatch undoes it).

    The client copies HF_ENDPOINT into ``constants.ENDPOINT`` and the download URL template at import time,
    and its module-level ``HfApi`` (behind ``huggingface_hub.create_repo`` & co.) keeps the endpoint it was
    built with, so all three are patched. Xet and telemetry are turned off too.
    """
    from huggingface_hub import constants, hf_api

    url = url.rstrip("/")
    monkeypatch.setenv("HF_ENDPOINT", url)
    monkeypatch.setattr(constants, "ENDPOINT", url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    monkeypatch.setattr(hf_api.api, "endpoint", url)
