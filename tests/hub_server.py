"""A small Hugging Face Hub stand-in for tests: stdlib `http.server` on 127.0.0.1 in a thread.

It implements exactly the endpoints that the real `huggingface_hub` client (2.x) calls to push a
folder of files and to download them again, as read from the client's source:

  GET  /api/whoami-v2                                  the token check (one token accepted, 401 otherwise)
  GET  /api/agent-harnesses                            the client's best-effort registry fetch (empty)
  POST /api/repos/create                               `HfApi.create_repo`
  POST /api/validate-yaml                              `create_commit` checks README.md front matter here
  POST /api/{type}s/{ns}/{name}/branch/{branch}        `HfApi.create_branch`
  POST /api/{type}s/{ns}/{name}/preupload/{rev}        upload modes: always "regular" (inline base64), so
                                                       no LFS / Xet transfer is ever requested
  POST /api/{type}s/{ns}/{name}/commit/{rev}           NDJSON commit: header, file (base64), deletedFile/Folder
  GET  /api/{type}s/{ns}/{name}[/revision/{rev}]       repo info (sha, siblings)
  GET  /api/{type}s/{ns}/{name}/tree/{rev}[/{path}]    tree listing
  POST /api/{type}s/{ns}/{name}/paths-info/{rev}       `get_paths_info`
  GET  /api/{type}s/{ns}/{name}/refs                   branches
  HEAD|GET /[datasets/]{ns}/{name}/resolve/{rev}/{path}  file metadata and content (`hf_hub_download`)

Everything else answers 404 and is recorded in `unhandled`, so a test sees what the client asked
for. Every request is recorded in `requests`. The server only binds to 127.0.0.1, refuses bodies
over `max_body` bytes, answers at most `max_requests` requests (then a non-retryable 400), and
`stop()` shuts it down and joins its thread.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a blob (what the Hub reports as a regular file's oid/etag)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool
    commits: dict = field(default_factory=dict)  # sha -> {"files": {path: bytes}, "parent": sha, "message": str}
    branches: dict = field(default_factory=dict)  # name -> sha

    def resolve(self, revision: str) -> str | None:
        if revision in self.branches:
            return self.branches[revision]
        if revision in self.commits:
            return revision
        return None


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


class FakeHub:
    def __init__(self, token: str = "hf_valid_test_token", user: str = "tester", *, max_requests: int = 2000,
                 max_body: int = 256 * 2**20):
        self.token, self.user = token, user
        self.max_requests, self.max_body = max_requests, max_body
        self.repos: dict[tuple[str, str], Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self.unhandled: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self._counter = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakeHub":
        hub = self

        class Handler(_Handler):
            pass

        Handler.hub = hub
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=10)
            self._server = None

    def __enter__(self) -> "FakeHub":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- inspection helpers for tests ------------------------------------------------------

    def files(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> dict[str, bytes]:
        repo = self.repos[(repo_type, repo_id)]
        return dict(repo.commits[repo.resolve(revision)]["files"])

    def write_requests(self) -> list[tuple[str, str]]:
        """Requests that would change state (creating repos or branches, committing, preuploading)."""
        return [(m, p) for m, p in self.requests if m == "POST" and not p.startswith(("/api/validate-yaml",))
                and "/paths-info/" not in p]

    # -- state changes -------------------------------------------------------------------

    def _new_sha(self, repo: Repo, payload: str) -> str:
        self._counter += 1
        return hashlib.sha1(f"{repo.repo_id}:{self._counter}:{payload}".encode()).hexdigest()

    def create_repo(self, repo_type: str, repo_id: str, private: bool) -> Repo:
        repo = Repo(repo_type, repo_id, private)
        sha = self._new_sha(repo, "initial commit")
        repo.commits[sha] = {"files": {".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"},
                             "parent": None, "message": "initial commit"}
        repo.branches["main"] = sha
        self.repos[(repo_type, repo_id)] = repo
        return repo

    def commit(self, repo: Repo, branch: str, lines: list[dict]) -> str:
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "the commit payload must start with a header line")
        parent = repo.branches[branch]
        files = dict(repo.commits[parent]["files"])
        for line in lines[1:]:
            key, value = line.get("key"), line.get("value", {})
            path = value.get("path", "")
            if not path or path.startswith("/") or ".." in path.split("/"):
                raise HubError(400, f"invalid path {path!r}")
            if key == "file":
                if value.get("encoding") != "base64":
                    raise HubError(400, "only base64 file content is supported")
                files[path] = base64.b64decode(value["content"])
            elif key == "deletedFile":
                if path not in files:
                    raise HubError(404, "A file with this name doesn't exist", "EntryNotFound")
                del files[path]
            elif key == "deletedFolder":
                prefix = path.rstrip("/") + "/"
                for name in [n for n in files if n.startswith(prefix)]:
                    del files[name]
            elif key == "lfsFile":
                raise HubError(400, "this stand-in only accepts regular (inline) files; preupload said so")
            else:
                raise HubError(400, f"unknown commit operation {key!r}")
        sha = self._new_sha(repo, json.dumps(lines[0]))
        repo.commits[sha] = {"files": files, "parent": parent, "message": lines[0]["value"].get("summary", "")}
        repo.branches[branch] = sha
        return sha


def _tree_entries(files: dict[str, bytes], base: str, recursive: bool) -> list[dict]:
    prefix = base.rstrip("/") + "/" if base else ""
    entries, dirs = [], set()
    for path in sorted(files):
        if not path.startswith(prefix):
            continue
        rest = path[len(prefix):]
        if "/" in rest:
            parts = rest.split("/")
            top = range(1, len(parts)) if recursive else range(1, 2)
            for i in top:
                dirs.add(prefix + "/".join(parts[:i]))
            if not recursive:
                continue
        data = files[path]
        entries.append({"type": "file", "oid": git_blob_sha1(data), "size": len(data), "path": path})
    entries += [{"type": "directory", "oid": hashlib.sha1(d.encode()).hexdigest(), "size": 0, "path": d}
                for d in sorted(dirs)]
    return entries


class _Handler(BaseHTTPRequestHandler):
    hub: FakeHub
    timeout = 30  # seconds per socket read: a stalled client cannot hold a thread forever
    protocol_version = "HTTP/1.0"

    def log_message(self, format, *args):  # keep pytest output clean
        pass

    # -- plumbing --------------------------------------------------------------------------

    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, content_type="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _json(self, status: int, obj, headers: dict | None = None):
        self._send(status, json.dumps(obj).encode(), headers)

    def _error(self, err: HubError):
        headers = {"X-Error-Message": err.message}
        if err.code:
            headers["X-Error-Code"] = err.code
        self._json(err.status, {"error": err.message}, headers)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > self.hub.max_body:
            raise HubError(413, f"request body of {length} bytes is over the stand-in's limit")
        return self.rfile.read(length) if length else b""

    def _authorized(self) -> bool | None:
        """True for the accepted token, False for any other token, None when no token was sent."""
        auth = self.headers.get("Authorization", "")
        if not auth:
            return None
        return auth == f"Bearer {self.hub.token}"

    def _require_token(self):
        ok = self._authorized()
        if not ok:
            raise HubError(401, "Invalid credentials in Authorization header" if ok is False
                           else "You must be authenticated to access this endpoint")

    def _dispatch(self, method: str):
        split = urlsplit(self.path)
        hub = self.hub
        with hub.lock:
            hub.requests.append((method, split.path))
            over_budget = len(hub.requests) > hub.max_requests
        try:
            if over_budget:
                raise HubError(400, f"the test server's budget of {hub.max_requests} requests is exhausted")
            if self._authorized() is False:  # the Hub refuses a bad token on every endpoint
                raise HubError(401, "Invalid credentials in Authorization header")
            segments = [unquote(s) for s in split.path.split("/")[1:]]
            query = {k: v[-1] for k, v in parse_qs(split.query).items()}
            with hub.lock:
                handled = self._route(method, segments, query)
            if not handled:
                with hub.lock:
                    hub.unhandled.append((method, split.path))
                raise HubError(404, f"the test server does not implement {method} {split.path}")
        except HubError as err:
            self._error(err)

    # -- routes ----------------------------------------------------------------------------

    def _route(self, method: str, seg: list[str], query: dict) -> bool:
        hub = self.hub
        if seg[:2] == ["api", "whoami-v2"] and method == "GET":
            self._require_token()
            self._json(200, {"type": "user", "id": "0", "name": hub.user, "fullname": "Test User", "orgs": [],
                             "auth": {"type": "access_token", "accessToken": {"displayName": "test", "role": "write"}}})
            return True
        if seg[:2] == ["api", "agent-harnesses"] and method == "GET":  # the client's best-effort registry fetch
            self._json(200, {"standardEnvVars": [], "harnesses": {}})
            return True
        if seg[:3] == ["api", "repos", "create"] and method == "POST":
            self._require_token()
            payload = json.loads(self._body() or b"{}")
            namespace = payload.get("organization") or hub.user
            if namespace != hub.user:
                raise HubError(403, f"You don't have the rights to create a repo under {namespace}")
            repo_type = payload.get("type") or "model"
            repo_id = f"{namespace}/{payload['name']}"
            url = f"{hub.url}/{URL_PREFIX[repo_type]}{repo_id}"
            if (repo_type, repo_id) in hub.repos:
                raise HubError(409, "You already created this repo")
            hub.create_repo(repo_type, repo_id, payload.get("visibility") == "private")
            self._json(200, {"url": url, "name": repo_id})
            return True
        if seg[:2] == ["api", "validate-yaml"] and method == "POST":
            payload = json.loads(self._body() or b"{}")
            errors = _validate_card(payload.get("content", ""))
            self._json(400 if errors else 200, {"errors": [{"message": e} for e in errors], "warnings": []})
            return True
        if len(seg) >= 4 and seg[0] == "api" and seg[1] in REPO_TYPES:
            return self._repo_api(method, REPO_TYPES[seg[1]], f"{seg[2]}/{seg[3]}", seg[4:], query)
        if method in ("GET", "HEAD"):
            repo_type = "model"
            if seg and seg[0] in ("datasets", "spaces"):
                repo_type, seg = REPO_TYPES[seg[0]], seg[1:]
            if len(seg) >= 5 and seg[2] == "resolve":
                return self._resolve(repo_type, f"{seg[0]}/{seg[1]}", seg[3], "/".join(seg[4:]))
        return False

    def _repo(self, repo_type: str, repo_id: str, write: bool = False) -> Repo:
        repo = self.hub.repos.get((repo_type, repo_id))
        authorized = self._authorized()
        if repo is None or (repo.private and not authorized):
            raise HubError(401 if not authorized else 404, "Repository Not Found", "RepoNotFound")
        if write:
            self._require_token()
            if repo_id.split("/")[0] != self.hub.user:
                raise HubError(403, "You don't have the rights to write to this repo")
        return repo

    def _commit_sha(self, repo: Repo, revision: str) -> str:
        sha = repo.resolve(revision)
        if sha is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return sha

    def _repo_api(self, method: str, repo_type: str, repo_id: str, rest: list[str], query: dict) -> bool:
        hub = self.hub
        if method == "GET" and (not rest or rest[0] == "revision"):
            repo = self._repo(repo_type, repo_id)
            sha = self._commit_sha(repo, rest[1] if len(rest) > 1 else "main")
            files = repo.commits[sha]["files"]
            self._json(200, {
                "_id": hashlib.sha1(repo_id.encode()).hexdigest()[:24], "id": repo_id, "modelId": repo_id,
                "author": repo_id.split("/")[0], "sha": sha, "private": repo.private, "disabled": False,
                "gated": False, "downloads": 0, "likes": 0, "tags": [], "lastModified": "2025-01-01T00:00:00.000Z",
                "createdAt": "2025-01-01T00:00:00.000Z",
                "siblings": [{"rfilename": p} for p in sorted(files)],
            })
            return True
        if method == "GET" and rest and rest[0] == "refs":
            repo = self._repo(repo_type, repo_id)
            self._json(200, {"branches": [{"name": b, "ref": f"refs/heads/{b}", "targetCommit": s}
                                          for b, s in repo.branches.items()], "tags": [], "converts": []})
            return True
        if method == "GET" and rest and rest[0] == "tree" and len(rest) >= 2:
            repo = self._repo(repo_type, repo_id)
            files = repo.commits[self._commit_sha(repo, rest[1])]["files"]
            base = "/".join(rest[2:]).strip("/")
            if base and base in files:
                raise HubError(404, f"{base} is a file, not a folder", "EntryNotFound")
            entries = _tree_entries(files, base, query.get("recursive") in ("1", "true", "True"))
            if base and not entries:
                raise HubError(404, f"{base} does not exist", "EntryNotFound")
            self._json(200, entries)
            return True
        if method != "POST" or not rest:
            return False
        action = rest[0]
        if action == "paths-info" and len(rest) == 2:
            repo = self._repo(repo_type, repo_id)
            files = repo.commits[self._commit_sha(repo, rest[1])]["files"]
            body = self._body()
            if self.headers.get("Content-Type", "").startswith("application/json"):
                paths = json.loads(body or b"{}").get("paths", [])
            else:
                paths = parse_qs(body.decode()).get("paths", [])
            out = []
            for path in paths:
                if path in files:
                    out.append({"type": "file", "oid": git_blob_sha1(files[path]), "size": len(files[path]), "path": path})
                elif any(f.startswith(path.rstrip("/") + "/") for f in files):
                    out.append({"type": "directory", "oid": hashlib.sha1(path.encode()).hexdigest(), "size": 0, "path": path})
            self._json(200, out)
            return True
        if action == "branch" and len(rest) >= 2:
            repo = self._repo(repo_type, repo_id, write=True)
            branch = "/".join(rest[1:])
            if branch in repo.branches:
                raise HubError(409, f"Reference already exists: refs/heads/{branch}")
            payload = json.loads(self._body() or b"{}")
            repo.branches[branch] = self._commit_sha(repo, payload.get("startingPoint") or "main")
            self._json(200, {})
            return True
        if action == "preupload" and len(rest) == 2:
            repo = self._repo(repo_type, repo_id, write=True)
            files = repo.commits[self._commit_sha(repo, rest[1])]["files"]
            payload = json.loads(self._body() or b"{}")
            self._json(200, {"files": [
                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                 "oid": git_blob_sha1(files[f["path"]]) if f["path"] in files else None}
                for f in payload.get("files", [])
            ], "commitOid": repo.resolve(rest[1])})
            return True
        if action == "commit" and len(rest) == 2:
            repo = self._repo(repo_type, repo_id, write=True)
            branch = rest[1]
            if query.get("create_pr"):
                raise HubError(400, "this stand-in does not implement pull requests")
            if branch not in repo.branches:
                raise HubError(404, f"Invalid rev id: {branch}", "RevisionNotFound")
            lines = [json.loads(line) for line in self._body().splitlines() if line.strip()]
            sha = hub.commit(repo, branch, lines)
            self._json(200, {"commitUrl": f"{hub.url}/{URL_PREFIX[repo_type]}{repo_id}/commit/{sha}",
                             "commitOid": sha, "pullRequestUrl": None, "success": True})
            return True
        return False

    def _resolve(self, repo_type: str, repo_id: str, revision: str, path: str) -> bool:
        repo = self._repo(repo_type, repo_id)
        sha = self._commit_sha(repo, revision)
        files = repo.commits[sha]["files"]
        if path not in files:
            raise HubError(404, "Entry not found", "EntryNotFound")
        data = files[path]
        self._send(200, data, {"ETag": f'"{git_blob_sha1(data)}"', "X-Repo-Commit": sha,
                               "Accept-Ranges": "bytes"}, content_type="application/octet-stream")
        return True


def _validate_card(content: str) -> list[str]:
    """What the Hub's YAML validation would reject in a README.md front matter (a useful subset)."""
    if not content.startswith("---"):
        return []
    try:
        _, front, _ = content.split("---", 2)
        meta = yaml.safe_load(front)
    except (ValueError, yaml.YAMLError) as err:
        return [f"invalid YAML front matter: {err}"]
    if meta is None:
        return []
    if not isinstance(meta, dict):
        return ["the front matter must be a mapping"]
    errors = []
    for key in ("tags", "datasets", "metrics"):
        if key in meta and not isinstance(meta[key], (list, str)):
            errors.append(f"`{key}` must be a list or a string")
    index = meta.get("model-index")
    if index is not None:
        if not isinstance(index, list) or not all(isinstance(m, dict) and "name" in m and "results" in m for m in index):
            errors.append("`model-index` must be a list of {name, results}")
        else:
            for model in index:
                for result in model["results"]:
                    if not {"task", "dataset", "metrics"} <= set(result):
                        errors.append("each model-index result needs task, dataset and metrics")
                    elif not all("type" in m and "value" in m for m in result["metrics"]):
                        errors.append("each model-index metric needs a type and a value")
    return errors


def point_hub_clients_at(server, home, mp) -> None:
    """huggingface_hub and transformers pointed at `server` (environment and import-time constants), with the
    cache in `home` and no saved login; `mp` is a pytest MonkeyPatch, which undoes it all."""
    import transformers.utils.hub
    from huggingface_hub import constants

    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        mp.delenv(name, raising=False)
    mp.setenv("HF_ENDPOINT", server.url)
    mp.setenv("HF_HOME", str(home))
    mp.setenv("HF_TOKEN", server.token)
    mp.setattr(constants, "ENDPOINT", server.url)
    mp.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", server.url + "/{repo_id}/resolve/{revision}/{filename}")
    mp.setattr(constants, "HF_HUB_OFFLINE", False)
    mp.setattr(constants, "HF_HOME", str(home))
    mp.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    mp.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))  # no saved login
    mp.setattr(constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))
    if hasattr(constants, "AGENT_HARNESSES_PATH"):
        mp.setattr(constants, "AGENT_HARNESSES_PATH", str(home / "agent_harnesses.json"))
    # transformers keeps one HfApi made with the endpoint of its first use (a test that loaded a model before
    # this one): drop it, or loading back asks huggingface.co and retries for 45 s before giving up
    mp.setattr(transformers.utils.hub, "_hf_api", None)
