"""A real Label Studio server on 127.0.0.1 for the annotation round-trip test, and a small client for its REST API.

Label Studio (PyPI `label-studio` 1.23) runs from its own virtual environment, because its pins (Django, pydantic,
numpy...) conflict with the project's: `python3 -m venv .venv-ls && .venv-ls/bin/pip install "label-studio==1.23.*"`.
The binary is found through SSL_TEXT_LABEL_STUDIO or at .venv-ls/bin/label-studio.

The client speaks plain HTTP (urllib): label-studio-sdk 2.x would downgrade numpy and add opencv to the project venv.
Authentication uses a legacy API token (`Authorization: Token ...`) that the server is told at start
(`--user-token` with `--enable-legacy-api-token`; since 1.2x new organisations get only personal access tokens, JWTs
that the UI hands out). The version check, analytics and Sentry reporting are switched off so that the server makes
no outbound connection.

`python -m tests.label_studio_server OUT_DIR` regenerates the export fixtures in tests/fixtures from a real server.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from ssl_text.pipelines.suggest import LS_CHOICES, LS_TEXT, label_config_xml, label_studio_tasks

ROOT = Path(__file__).resolve().parents[1]
BINARY_ENV = "SSL_TEXT_LABEL_STUDIO"
DEFAULT_BINARY = ROOT / ".venv-ls" / "bin" / "label-studio"
HOST = "127.0.0.1"
START_TIMEOUT_S = 240  # about 35 s with a fresh database on 2 idle cores; the migrations slow down under load
STOP_TIMEOUT_S = 20
REQUEST_TIMEOUT_S = 60
POLL_S = 0.5
PORT_ATTEMPTS = 3  # a free port can be taken between probing it and the server binding it
LOG_TAIL_CHARS = 4000
# Settings read from the environment by Label Studio: nothing may leave the machine during a test.
OFFLINE_ENV = {
    "LATEST_VERSION_CHECK": "false",  # otherwise GET https://pypi.org/pypi/label-studio/json at start
    "COLLECT_ANALYTICS": "false",
    "SENTRY_DSN": "",
    "FRONTEND_SENTRY_DSN": "",
}


class LabelStudioError(RuntimeError):
    """The server did not start, or answered a request with an error."""


def find_binary() -> str | None:
    """The `label-studio` executable: $SSL_TEXT_LABEL_STUDIO, else .venv-ls/bin/label-studio; None if neither."""
    configured = os.environ.get(BINARY_ENV)
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    return str(DEFAULT_BINARY) if os.access(DEFAULT_BINARY, os.X_OK) else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def choice_result(label: str) -> list[dict]:
    """The `result` of an annotation that picks `label` in the labeling config `ssl-text suggest` writes."""
    return [{"from_name": LS_CHOICES, "to_name": LS_TEXT, "type": "choices", "value": {"choices": [label]}}]


def server_env(data_dir: Path) -> dict[str, str]:
    """The parent's environment without Label Studio settings or Python paths, plus a private data dir, offline."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("LABEL_STUDIO_", "HEARTEX_")) and key not in ("PYTHONPATH", "VIRTUAL_ENV")
    }
    # Set before Label Studio is imported: otherwise it also creates ~/.local/share/label-studio.
    env["LABEL_STUDIO_BASE_DATA_DIR"] = str(data_dir)
    env.update(OFFLINE_ENV)
    return env


@dataclass
class LabelStudio:
    url: str
    token: str
    process: subprocess.Popen
    log_path: Path

    def request(self, method: str, path: str, body: Any = None, **query) -> Any:
        """One REST call; the decoded JSON answer. An HTTP error raises LabelStudioError with the server's reply."""
        url = f"{self.url}{path}" + (f"?{urlencode(query)}" if query else "")
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Token {self.token}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=REQUEST_TIMEOUT_S) as response:
                payload = response.read()
        except urllib.error.HTTPError as err:
            raise LabelStudioError(f"{method} {url} -> {err.code}: {err.read().decode(errors='replace')[:2000]}")
        return json.loads(payload) if payload else None

    def create_project(self, title: str, label_config: str) -> int:
        return self.request("POST", "/api/projects", {"title": title, "label_config": label_config})["id"]

    def import_tasks(self, project_id: int, tasks: list[dict]) -> list[int]:
        """Import tasks (with their `predictions`); the new task ids, in the order of `tasks`."""
        answer = self.request("POST", f"/api/projects/{project_id}/import", tasks, return_task_ids="true")
        if answer["task_count"] != len(tasks):
            raise LabelStudioError(f"imported {answer['task_count']} of {len(tasks)} tasks: {answer}")
        return answer["task_ids"]

    def task(self, task_id: int) -> dict:
        return self.request("GET", f"/api/tasks/{task_id}")

    def annotate(self, task_id: int, label: str | None) -> dict:
        """Submit an annotation as the logged-in user would: choose `label`, or skip the task when None."""
        body = {"result": [], "was_cancelled": True} if label is None else {"result": choice_result(label)}
        return self.request("POST", f"/api/tasks/{task_id}/annotations", body)

    def export_json(self, project_id: int, all_tasks: bool = False) -> list[dict]:
        """The project's JSON export (the format of the UI's Export > JSON); by default only annotated tasks."""
        return self.request(
            "GET", f"/api/projects/{project_id}/export", exportType="JSON", download_all_tasks=str(all_tasks).lower()
        )

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-LOG_TAIL_CHARS:] if self.log_path.exists() else ""

    def stop(self) -> None:
        """Stop the server by its PID: SIGTERM, then SIGKILL if it has not exited within STOP_TIMEOUT_S."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(STOP_TIMEOUT_S)


def _launch(binary: str, data_dir: Path, port: int, token: str) -> LabelStudio:
    log_path = data_dir / f"label-studio-{port}.log"
    command = [
        binary, "start", "--no-browser", "--internal-host", HOST, "--port", str(port), "--data-dir", str(data_dir),
        "--username", "annotator@example.com", "--password", secrets.token_hex(12),
        "--user-token", token, "--enable-legacy-api-token", "--log-level", "WARNING",
    ]  # fmt: skip
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=server_env(data_dir),
            cwd=data_dir, start_new_session=True,
        )  # fmt: skip
    return LabelStudio(f"http://{HOST}:{port}", token, process, log_path)


def _wait_healthy(server: LabelStudio, deadline: float) -> bool:
    """True once GET /health answers 200; False if the process exits first. Raises at the deadline."""
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"{server.url}/health", timeout=REQUEST_TIMEOUT_S) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(POLL_S)
    server.stop()
    raise LabelStudioError(f"Label Studio did not answer {server.url}/health within the time limit; log:\n"
                           f"{server.log_tail()}")


def start_label_studio(binary: str, data_dir: Path, timeout_s: float = START_TIMEOUT_S) -> LabelStudio:
    """Start `label-studio` on a free 127.0.0.1 port with a fresh database in `data_dir`; return once healthy."""
    data_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout_s
    token = secrets.token_hex(20)
    for _ in range(PORT_ATTEMPTS):
        server = _launch(binary, data_dir, free_port(), token)
        if _wait_healthy(server, deadline):
            return server
    raise LabelStudioError(f"Label Studio exited before answering /health ({PORT_ATTEMPTS} ports tried); log:\n"
                           f"{server.log_tail()}")


# ---- the scenario that produced tests/fixtures/label_studio_export*.json -------------------------------------------

FIXTURE_POOL_SIZE = 24
FIXTURE_POOL_SEED = 5
FIXTURE_MODEL_VERSION = "run-0123abcd"  # the shape of suggest's `model_version`: run folder name and fingerprint
FIXTURE_PROBABILITY = 0.7  # the model's probability of its predicted label


def fixture_pool() -> list[tuple[str, str]]:
    """The (label, text) pool the fixtures annotate: tests.toy_data.make_texts(24, seed=5); pool_index = row."""
    from tests.toy_data import make_texts

    return make_texts(FIXTURE_POOL_SIZE, seed=FIXTURE_POOL_SEED)


def fixture_tasks(rows: list[tuple[int, str, str]], label_names: list[str]) -> list[dict]:
    """The tasks `ssl-text suggest` writes for (pool_index, text, predicted label) rows, with p = 0.7 for the label."""
    rest = round((1 - FIXTURE_PROBABILITY) / (len(label_names) - 1), 6)
    records = [
        {"pool_index": index, "text": text, "predicted_label": predicted,
         "probabilities": {name: FIXTURE_PROBABILITY if name == predicted else rest for name in label_names}}
        for index, text, predicted in rows
    ]  # fmt: skip
    return label_studio_tasks(records, FIXTURE_MODEL_VERSION)


def write_fixtures(out_dir: Path, data_dir: Path) -> None:
    """Annotate the fixture pool on a real server and save its exports.

    label_studio_export.json (Export > JSON of all tasks): pool rows 0-5 with the pool's labels; rows 0-2 accept the
    pre-annotation, rows 3-4 correct it, row 5 is skipped (a cancelled annotation), rows 6-7 are imported but never
    annotated. label_studio_export_problems.json (the annotated tasks): row 8 has two annotations that disagree, row
    9 a label outside the label set ("weather": the server does not check annotations against the config), and a
    task whose text is not in the pool (pool_index 999).
    """
    pool = fixture_pool()
    label_names = sorted({label for label, _ in pool})
    other = {name: label_names[(i + 1) % len(label_names)] for i, name in enumerate(label_names)}
    server = start_label_studio(find_binary() or str(DEFAULT_BINARY), data_dir)
    try:
        project = server.create_project("ssl-text suggestions", label_config_xml(label_names))
        rows = [(i, pool[i][1], pool[i][0] if i < 3 else other[pool[i][0]]) for i in range(8)]
        ids = server.import_tasks(project, fixture_tasks(rows, label_names))
        for i, task_id in enumerate(ids):
            if i < 5:
                server.annotate(task_id, pool[i][0])
            elif i == 5:
                server.annotate(task_id, None)
        (out_dir / "label_studio_export.json").write_text(json.dumps(server.export_json(project, True), indent=2))

        project = server.create_project("ssl-text problems", label_config_xml(label_names))
        rows = [(8, pool[8][1], pool[8][0]), (9, pool[9][1], pool[9][0]), (999, "a text not in the pool.", "sports")]
        ids = server.import_tasks(project, fixture_tasks(rows, label_names))
        server.annotate(ids[0], pool[8][0])
        server.annotate(ids[0], other[pool[8][0]])
        server.annotate(ids[1], "weather")
        server.annotate(ids[2], label_names[0])
        (out_dir / "label_studio_export_problems.json").write_text(json.dumps(server.export_json(project), indent=2))
    finally:
        server.stop()


if __name__ == "__main__":
    import tempfile

    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "tests" / "fixtures"
    with tempfile.TemporaryDirectory() as tmp:
        write_fixtures(target, Path(tmp))
    print(f"wrote {target}/label_studio_export.json and label_studio_export_problems.json")
