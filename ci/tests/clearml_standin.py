"""TEST-ONLY in-process stand-in for the ClearML server REST API, its file server and an agent.

A real ClearML server needs MongoDB, Elasticsearch and Redis, none of which can run here, so the
clearml executor and `experiment push` are tested through the *real* clearml SDK against this small
threaded HTTP server, and a real `clearml-agent` (`execute --id`, `daemon --queue ... --foreground`)
runs against it too. It implements only the endpoints the SDK and the agent call in those flows, with
just enough state (tasks, projects, queues, workers, uploaded files) to answer them. It is STRICT: an
endpoint it does not implement answers HTTP 400 and is recorded in `unknown_calls`; the `standin`
fixtures fail the test at teardown listing them (`assert_no_unknown_calls`), so a new SDK or agent
call is noticed, never silently answered with an empty success. It is not a ClearML server: no
users, no permissions, no persistence, no real search semantics.

Routes (one port):  `/<version?>/<service>.<action>` (API), `/files/<path>` (file server: POST
multipart upload, GET download). The "agent" (`StandIn.agent`) is an optional callback run in a
thread when a task is enqueued: it receives the task id and plays clearml-agent's part (tests of a
real agent leave it None and let the task wait in its queue for `queues.get_next_task`).
"""

from __future__ import annotations

import copy
import email.parser
import email.policy
import json
import re
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt

API_VERSION = "2.13"
SERVER_VERSION = "1.9.0"
TERMINAL_STATUSES = {"completed", "failed", "stopped", "published", "closed"}


def _merge(target: dict, patch: dict) -> dict:
    """Recursive dict update (how the server applies partial edits)."""
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
    return target


class StandIn:
    """State and handlers of the stand-in. `start()` it, point CLEARML_* env vars at `.url`."""

    def __init__(self) -> None:
        self.tasks: dict[str, dict] = {}
        self.projects: dict[str, dict] = {}
        self.queues: dict[str, dict] = {
            "q-default": {"id": "q-default", "name": "default", "entries": [], "tags": [], "system_tags": []}
        }
        self.workers: dict[str, dict] = {}
        self.files: dict[str, bytes] = {}
        self.events: list[dict] = []
        self.calls: list[str] = []
        self.unknown_calls: list[str] = []
        self.agent: Callable[[str], None] | None = None
        self.api_status: int | None = None
        self.lock = threading.RLock()
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None
        self.agent_threads: list[threading.Thread] = []

    # --- lifecycle --------------------------------------------------------------------------------

    def start(self) -> StandIn:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                standin._dispatch(self)

            def do_POST(self) -> None:
                standin._dispatch(self)

            def do_PUT(self) -> None:
                standin._dispatch(self)

            def do_HEAD(self) -> None:
                standin._dispatch(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def wait_agents(self, timeout_s: float = 60.0) -> None:
        """Wait for agent threads started so far (so their effects and logs are complete)."""
        for thread in list(self.agent_threads):
            thread.join(timeout=timeout_s)

    def stop(self) -> None:
        self.wait_agents()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def assert_no_unknown_calls(self) -> None:
        """Fail (AssertionError) listing every endpoint that was called but is not implemented."""
        unknown = sorted(set(self.unknown_calls))
        assert not unknown, f"the ClearML stand-in was called on endpoints it does not implement: {unknown}"

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def files_url(self) -> str:
        return self.url + "/files"

    def env(self) -> dict[str, str]:
        """CLEARML_* variables pointing the SDK at this stand-in."""
        return {
            "CLEARML_API_HOST": self.url,
            "CLEARML_WEB_HOST": self.url + "/web",
            "CLEARML_FILES_HOST": self.files_url,
            "CLEARML_API_ACCESS_KEY": "standin-key",
            "CLEARML_API_SECRET_KEY": "standin-secret",
        }

    # --- HTTP plumbing ----------------------------------------------------------------------------

    def _dispatch(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        path = handler.path.split("?", 1)[0]
        try:
            if path == "/files" or path.startswith("/files/"):
                self._files(handler, path[len("/files") :].strip("/"), body)
                return
            match = re.search(r"([a-z_]+)\.([a-z_]+)$", path)
            if path.rstrip("/").endswith("debug.ping") or match is None:
                self._reply(handler, 200, {"meta": {"result_code": 200}, "data": {}})
                return
            service, action = match.groups()
            if self.api_status is not None and service != "auth":  # a sick server: logs in, then fails
                self._api_reply(handler, service, action, self.api_status, {}, message="unavailable")
                return
            payload = self._parse_body(body, service, action)
            with self.lock:
                self.calls.append(f"{service}.{action}")
                method = getattr(self, f"api_{service}_{action}", None)
                if method is None:
                    self.unknown_calls.append(f"{service}.{action}")
                    raise _ApiError(
                        service, action, 400, f"the stand-in does not implement {service}.{action}"
                    )
                data = method(payload)
            self._api_reply(handler, service, action, 200, data)
        except _ApiError as error:
            self._api_reply(handler, error.service, error.action, error.code, {}, message=error.message)

    @staticmethod
    def _parse_body(body: bytes, service: str, action: str) -> Any:
        if not body.strip():
            return {}
        text = body.decode("utf-8")
        if service == "events" and action == "add_batch":
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        return json.loads(text)

    @staticmethod
    def _reply(handler: BaseHTTPRequestHandler, code: int, payload: Any, raw: bytes | None = None) -> None:
        data = raw if raw is not None else json.dumps(payload).encode("utf-8")
        handler.send_response(code)
        handler.send_header(
            "Content-Type", "application/octet-stream" if raw is not None else "application/json"
        )
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _api_reply(
        self,
        handler: BaseHTTPRequestHandler,
        service: str,
        action: str,
        code: int,
        data: Any,
        message: str = "OK",
    ) -> None:
        meta = {
            "id": uuid.uuid4().hex,
            "trx": uuid.uuid4().hex,
            "endpoint": {
                "name": f"{service}.{action}",
                "requested_version": API_VERSION,
                "actual_version": API_VERSION,
            },
            "result_code": code,
            "result_subcode": 0,
            "result_msg": message,
            "error_stack": "",
        }
        self._reply(handler, code, {"meta": meta, "data": data})

    def _files(self, handler: BaseHTTPRequestHandler, path: str, body: bytes) -> None:
        if handler.command in ("GET", "HEAD"):
            with self.lock:
                content = self.files.get(_file_key(path))
            if content is None:
                self._reply(handler, 404, {"error": f"no file {path}"})
            elif handler.command == "HEAD":
                handler.send_response(200)
                handler.send_header("Content-Length", str(len(content)))
                handler.end_headers()
            else:
                self._reply(handler, 200, None, raw=content)
            return
        content_type = handler.headers.get("Content-Type", "")
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
        )
        base = path.rstrip("/")
        with self.lock:
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                self.files[_file_key(f"{base}/{name}")] = part.get_payload(decode=True)
        self._reply(handler, 200, {})

    # --- state helpers ----------------------------------------------------------------------------

    def task(self, task_id: str, service: str = "tasks", action: str = "get") -> dict:
        if task_id not in self.tasks:
            raise _ApiError(service, action, 400, f"Invalid task id: id={task_id}")
        return self.tasks[task_id]

    def set_status(self, task_id: str, status: str, reason: str = "") -> None:
        with self.lock:
            task = self.tasks[task_id]
            task["status"] = status
            task["status_reason"] = reason
            task["last_update"] = _now()

    def _status_change(self, payload: dict, status: str, action: str) -> dict:
        task = self.task(payload.get("task"), action=action)
        task["status"] = status
        task["last_update"] = _now()
        return {"updated": 1, "fields": {"status": status}}

    # --- auth / server ----------------------------------------------------------------------------

    def api_auth_login(self, payload: dict) -> dict:
        claims = {
            "api_version": API_VERSION,
            "server_version": SERVER_VERSION,
            "env": "test",
            "exp": int(time.time()) + 24 * 3600,
            "identity": {"user": "standin", "company": "c"},
        }
        return {
            "token": jwt.encode(claims, "standin-secret-standin-secret-standin-secret", algorithm="HS256")
        }

    def api_users_get_current_user(self, payload: dict) -> dict:
        return {"user": {"id": "standin", "name": "stand-in", "company": {"id": "c"}}, "getting_started": {}}

    def api_server_info(self, payload: dict) -> dict:
        return {"version": SERVER_VERSION, "build": "standin", "uid": "standin"}

    # --- projects ---------------------------------------------------------------------------------

    def api_projects_get_all(self, payload: dict) -> dict:
        names = payload.get("name")
        projects = list(self.projects.values())
        if names:
            pattern = re.compile(names if isinstance(names, str) else "|".join(names))
            projects = [p for p in projects if pattern.search(p["name"])]
        return {"projects": copy.deepcopy(projects)}

    def api_projects_get_by_id(self, payload: dict) -> dict:
        project = self.projects.get(payload.get("project"))
        if project is None:
            raise _ApiError("projects", "get_by_id", 400, f"Invalid project id: id={payload.get('project')}")
        return {"project": copy.deepcopy(project)}

    def api_projects_create(self, payload: dict) -> dict:
        project_id = "p-" + uuid.uuid4().hex[:12]
        self.projects[project_id] = {"id": project_id, "name": payload["name"], "basename": payload["name"]}
        return {"id": project_id}

    # --- tasks ------------------------------------------------------------------------------------

    def api_tasks_create(self, payload: dict) -> dict:
        task_id = uuid.uuid4().hex
        task = {
            "id": task_id,
            "status": "created",
            "created": _now(),
            "last_update": _now(),
            "execution": {},
            "script": {},
            "hyperparams": {},
            "configuration": {},
            "output": {},
            "tags": [],
            "system_tags": [],
            "runtime": {},
            "models": {"input": [], "output": []},
        }
        _merge(task, {k: v for k, v in payload.items() if k != "id"})
        self.tasks[task_id] = task
        return {"id": task_id}

    def api_tasks_clone(self, payload: dict) -> dict:
        source = self.task(payload["task"], action="clone")
        task_id = uuid.uuid4().hex
        task = copy.deepcopy(source)
        task.update(id=task_id, status="created", name=payload.get("new_task_name") or source.get("name"))
        task["execution"]["artifacts"] = []
        for key in ("new_task_hyperparams", "new_task_configuration"):
            if payload.get(key):
                task[key.replace("new_task_", "")] = copy.deepcopy(payload[key])
        self.tasks[task_id] = task
        return {"id": task_id}

    def _select(self, payload: dict) -> list[dict]:
        tasks = list(self.tasks.values())
        ids = payload.get("id")
        if ids:
            ids = [ids] if isinstance(ids, str) else ids
            tasks = [t for t in tasks if t["id"] in ids]
        if payload.get("name"):
            pattern = re.compile(payload["name"])
            tasks = [t for t in tasks if pattern.search(t.get("name", ""))]
        if payload.get("project"):
            projects = payload["project"]
            projects = [projects] if isinstance(projects, str) else projects
            tasks = [t for t in tasks if t.get("project") in projects]
        if payload.get("status"):
            tasks = [t for t in tasks if t.get("status") in payload["status"]]
        return tasks

    def api_tasks_get_all(self, payload: dict) -> dict:
        return {"tasks": copy.deepcopy(self._select(payload))}

    def api_tasks_get_all_ex(self, payload: dict) -> dict:
        return self.api_tasks_get_all(payload)

    def api_tasks_get_by_id(self, payload: dict) -> dict:
        return {"task": copy.deepcopy(self.task(payload["task"], action="get_by_id"))}

    def api_tasks_edit(self, payload: dict) -> dict:
        task = self.task(payload["task"], action="edit")
        _merge(task, {k: v for k, v in payload.items() if k not in ("task", "force")})
        task["last_update"] = _now()
        return {"updated": 1, "fields": {}}

    def api_tasks_update(self, payload: dict) -> dict:
        return self.api_tasks_edit(payload)

    def api_tasks_edit_hyper_params(self, payload: dict) -> dict:
        task = self.task(payload["task"], action="edit_hyper_params")
        if payload.get("replace_hyper_params") == "all":
            task["hyperparams"] = {}
        for param in payload.get("hyperparams", []):
            section = task["hyperparams"].setdefault(param.get("section", "General"), {})
            section[param["name"]] = copy.deepcopy(param)
        return {"updated": 1}

    def api_tasks_get_hyper_params(self, payload: dict) -> dict:
        params = []
        for task_id in payload.get("tasks", []):
            task = self.task(task_id, action="get_hyper_params")
            flat = [p for section in task["hyperparams"].values() for p in section.values()]
            params.append({"task": task_id, "hyperparams": copy.deepcopy(flat)})
        return {"params": params}

    def api_tasks_delete_hyper_params(self, payload: dict) -> dict:
        task = self.task(payload["task"], action="delete_hyper_params")
        for param in payload.get("hyperparams", []):
            task["hyperparams"].get(param.get("section"), {}).pop(param.get("name"), None)
        return {"deleted": 1}

    def api_tasks_edit_configuration(self, payload: dict) -> dict:
        task = self.task(payload["task"], action="edit_configuration")
        for item in payload.get("configuration", []):
            task["configuration"][item["name"]] = copy.deepcopy(item)
        return {"updated": 1}

    def api_tasks_add_or_update_artifacts(self, payload: dict) -> dict:
        task = self.task(payload["task"], action="add_or_update_artifacts")
        artifacts = task["execution"].setdefault("artifacts", [])
        for artifact in payload.get("artifacts", []):
            artifacts[:] = [a for a in artifacts if a.get("key") != artifact.get("key")]
            artifacts.append(copy.deepcopy(artifact))
        return {"updated": 1}

    def api_tasks_set_requirements(self, payload: dict) -> dict:
        task = self.task(payload["task"], action="set_requirements")
        task["script"]["requirements"] = payload.get("requirements")
        return {"updated": 1}

    def api_tasks_started(self, payload: dict) -> dict:
        return self._status_change(payload, "in_progress", "started")

    def api_tasks_stopped(self, payload: dict) -> dict:
        return self._status_change(payload, "stopped", "stopped")

    def api_tasks_stop(self, payload: dict) -> dict:
        return self._status_change(payload, "stopped", "stop")

    def api_tasks_completed(self, payload: dict) -> dict:
        return self._status_change(payload, "completed", "completed")

    def api_tasks_failed(self, payload: dict) -> dict:
        return self._status_change(payload, "failed", "failed")

    def api_tasks_close(self, payload: dict) -> dict:
        return self._status_change(payload, "closed", "close")

    def api_tasks_reset(self, payload: dict) -> dict:
        return self._status_change(payload, "created", "reset")

    def api_tasks_enqueue(self, payload: dict) -> dict:
        task = self.task(payload["task"], action="enqueue")
        queue_id = payload.get("queue") or "q-default"
        if queue_id not in self.queues:
            raise _ApiError("tasks", "enqueue", 400, f"Invalid queue id: id={queue_id}")
        self.queues[queue_id]["entries"].append({"task": task["id"]})
        task["status"] = "queued"
        task["execution"]["queue"] = queue_id
        if self.agent is not None:
            thread = threading.Thread(target=self._run_agent, args=(task["id"],), daemon=True)
            self.agent_threads.append(thread)
            thread.start()
        return {"queued": 1, "updated": 1, "fields": {"status": "queued"}}

    def _run_agent(self, task_id: str) -> None:
        assert self.agent is not None
        try:
            self.agent(task_id)
        except Exception as error:  # an agent crash is a failed task, as with clearml-agent
            self.set_status(task_id, "failed", f"agent error: {error}")

    def api_tasks_dequeue(self, payload: dict) -> dict:
        return self._status_change(payload, "created", "dequeue")

    def api_tasks_ping(self, payload: dict) -> dict:
        return {}

    # --- queues / events / models -----------------------------------------------------------------

    def api_queues_get_all(self, payload: dict) -> dict:
        queues = list(self.queues.values())
        if payload.get("name"):
            pattern = re.compile(payload["name"])
            queues = [q for q in queues if pattern.search(q["name"])]
        return {"queues": copy.deepcopy(queues)}

    def api_queues_get_default(self, payload: dict) -> dict:
        return {"id": "q-default", "name": "default"}

    def api_queues_get_by_id(self, payload: dict) -> dict:
        queue = self.queues.get(payload.get("queue"))
        if queue is None:
            raise _ApiError("queues", "get_by_id", 400, f"Invalid queue id: id={payload.get('queue')}")
        return {"queue": copy.deepcopy(queue)}

    def api_queues_get_next_task(self, payload: dict) -> dict:
        """Pop the queue's first entry (what `clearml-agent daemon` polls); {} when it is empty."""
        queue = self.queues.get(payload.get("queue"))
        if queue is None:
            raise _ApiError("queues", "get_next_task", 400, f"Invalid queue id: id={payload.get('queue')}")
        if not queue["entries"]:
            return {}
        entry = queue["entries"].pop(0)
        return {"entry": {"task": entry["task"], "added": _now()}}

    def add_queue(self, name: str) -> str:
        queue_id = "q-" + name
        self.queues[queue_id] = {"id": queue_id, "name": name, "entries": [], "tags": [], "system_tags": []}
        return queue_id

    # --- workers (clearml-agent) ------------------------------------------------------------------

    def api_workers_register(self, payload: dict) -> dict:
        self.workers[payload.get("worker", "")] = {
            "queues": payload.get("queues") or [],
            "registered": _now(),
        }
        return {}

    def api_workers_unregister(self, payload: dict) -> dict:
        self.workers.pop(payload.get("worker", ""), None)
        return {}

    def api_workers_status_report(self, payload: dict) -> dict:
        worker = self.workers.setdefault(payload.get("worker", ""), {"queues": []})
        worker["task"] = payload.get("task")
        worker["last_report"] = _now()
        return {}

    def api_workers_get_runtime_properties(self, payload: dict) -> dict:
        return {"runtime_properties": []}

    def api_events_add_batch(self, payload: list) -> dict:
        self.events.extend(payload)
        return {"added": len(payload), "errors": 0}

    def api_events_add(self, payload: dict) -> dict:
        self.events.append(payload)
        return {}

    def scalars(self, task_id: str) -> list[tuple[str, str, int, float]]:
        """(metric, variant, iteration, value) of every scalar event reported for a task."""
        return [
            (e["metric"], e["variant"], e["iter"], e["value"])
            for e in self.events
            if e.get("task") == task_id and e.get("type") == "training_stats_scalar"
        ]


class _ApiError(Exception):
    def __init__(self, service: str, action: str, code: int, message: str) -> None:
        super().__init__(message)
        self.service, self.action, self.code, self.message = service, action, code, message


def _file_key(path: str) -> str:
    """Canonical file-server key: URL-unquoted, no empty segments."""
    return "/".join(piece for piece in urllib.parse.unquote(path).split("/") if piece)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000+00:00", time.gmtime())
