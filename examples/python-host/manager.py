#!/usr/bin/env python3
"""Seed 004's manager, in Python with the standard library only.

It plays the manager's side against the same orchestrator as `pnpm sidecar`
(examples/sidecar/src/orchestrator.ts): it spawns the orchestrator as a sidecar
over stdio, frames JSON-RPC 2.0 the way LSP does (Content-Length headers), says
`hello` with the service it serves (`manager` 1.4.0) and its application
version, calls `orchestrate.route`, answers the orchestrator's
`manager.createPane` call that arrives meanwhile, follows the shared
`tasks/orchflow` stream, and checks what it gets. Exits 0 when every check passed.

    python3 examples/python-host/manager.py [--trace]

--trace prints every frame as it crosses the pipes (>> to the orchestrator, << from it).
Environment: NODE (default `node`) runs the orchestrator from the TypeScript
sources with `--import tsx`, from the repository root.
"""

import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
ORCHESTRATOR = os.path.join(ROOT, "examples", "sidecar", "src", "orchestrator.ts")

# What this manager is and serves, and what it needs of the orchestrator (examples/sidecar/src/services.ts).
APP = {"name": "orchflow", "version": "2.0.4"}
APP_ACCEPTS = ((2, 1, 0), (3, 0, 0))  # ">=2.1.0 <3.0.0"
SERVES = [{"name": "manager", "version": "1.4.0"}]
WANTS = {"orchestrate": (1, 2)}  # built against orchestrate 1.2.0: a peer must serve ^1.2.0

ERRORS = {-32601: "METHOD_NOT_FOUND", -32602: "INVALID_PARAMS", -32011: "UNAVAILABLE", -32013: "INCOMPATIBLE_APP"}
TIMEOUT_S = 20.0
TRACE = "--trace" in sys.argv[1:]


def say(who, what):
    print(f"  {who:<12} {what}", flush=True)


# --- Framing: the LSP base protocol ---------------------------------------------------------------


def write_message(stream, message):
    """`Content-Length: N\\r\\n\\r\\n` then N bytes of UTF-8 JSON."""
    body = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    stream.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    stream.flush()


def read_message(stream):
    """The next message, or None at the end of the stream. Header names match in any case."""
    length = None
    while True:
        line = stream.readline()
        if not line:
            return None
        line = line.rstrip(b"\r\n")
        if not line:
            if length is not None:
                break
            continue  # blank lines between messages are tolerated
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    body = stream.read(length)
    if len(body) < length:
        return None
    return json.loads(body.decode("utf-8"))


# --- Versions ---------------------------------------------------------------------------------------


def parse_version(text):
    core = text.split("-", 1)[0].split("+", 1)[0]
    major, minor, patch = (int(part) for part in core.split("."))
    return major, minor, patch


def compatible(served, wanted):
    """`served` satisfies ^wanted.major.wanted.minor.0 (for 0.x: the same minor)."""
    major, minor, _ = parse_version(served)
    if major != wanted[0]:
        return False
    return minor == wanted[1] if major == 0 else minor >= wanted[1]


# --- The connection ---------------------------------------------------------------------------------


class RpcError(Exception):
    def __init__(self, error):
        super().__init__(error.get("message"))
        self.code = error.get("code")
        self.name = ERRORS.get(self.code, str(self.code))
        self.data = error.get("data")


class Connection:
    """Requests both ways over the child's pipes: ours get string ids, the hub's are answered here."""

    def __init__(self, child, handlers, listeners):
        self.child = child
        self.handlers = handlers  # method -> function(params) -> result
        self.listeners = listeners  # method -> function(params)
        self.inbox = queue.Queue()
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        while True:
            message = read_message(self.child.stdout)
            if TRACE and message is not None:
                print(f"  << {json.dumps(message, ensure_ascii=False)}", flush=True)
            self.inbox.put(message)
            if message is None:
                return

    def send(self, message):
        if TRACE:
            print(f"  >> {json.dumps(message, ensure_ascii=False)}", flush=True)
        write_message(self.child.stdin, message)

    def notify(self, method, params):
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def request(self, method, params):
        """Sends a request and handles everything that arrives until its answer."""
        self.next_id += 1
        request_id = f"py-{self.next_id}"
        message = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params  # left out for a method without params
        self.send(message)
        answer = self.pump(lambda message: message.get("id") == request_id and "method" not in message)
        if "error" in answer:
            raise RpcError(answer["error"])
        return answer["result"]

    def pump(self, done=lambda message: False, until=lambda: False):
        """Handles incoming messages until one satisfies `done` (returned) or `until()` holds."""
        deadline = time.monotonic() + TIMEOUT_S
        while not until():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no answer in time")
            try:
                message = self.inbox.get(timeout=remaining)
            except queue.Empty:
                continue
            if message is None:
                raise ConnectionError("the orchestrator closed its stdout")
            if isinstance(message, list):
                raise ValueError("a batch frame: this peer did not ask for batches")
            if done(message):
                return message
            self._dispatch(message)
        return None

    def _dispatch(self, message):
        method = message.get("method")
        if method is None:
            return  # an answer nobody waits for
        if "id" not in message:
            listener = self.listeners.get(method)
            if listener:
                listener(message.get("params"))
            return
        handler = self.handlers.get(method)
        if handler is None:
            error = {"code": -32601, "message": f"this manager serves no method {method}"}
            self.send({"jsonrpc": "2.0", "id": message["id"], "error": error})
            return
        self.send({"jsonrpc": "2.0", "id": message["id"], "result": handler(message.get("params"))})


# --- The shared stream, folded as far as this manager needs ------------------------------------------


class TasksView:
    def __init__(self):
        self.version = 0
        self.tasks = {}

    def load(self, result):
        if "snapshot" in result:
            self.tasks = {
                task_id: {"status": task["status"], "sessions": list(task["sessionIds"])}
                for task_id, task in result["snapshot"]["tasks"].items()
            }
            self.version = result["version"]
        self.apply(result.get("events", []))

    def apply(self, events):
        for event in events:
            if event["version"] <= self.version:
                continue
            data = event["data"]
            kind = event["type"]
            if kind == "task.created":
                self.tasks[data["id"]] = {"status": data["status"], "sessions": []}
            elif kind == "task.updated" and "status" in data["changes"]:
                self.tasks[data["id"]]["status"] = data["changes"]["status"]
            elif kind == "task.deleted":
                self.tasks.pop(data["id"], None)
            elif kind == "session.taskAdded":
                self.tasks[data["taskId"]]["sessions"].append(data["sessionId"])
            self.version = event["version"]


def main():
    checks = []

    def check(ok, what):
        checks.append(ok)
        print(f"  {'✓' if ok else '✗ FAILED:'} {what}", flush=True)
        return ok

    print("Lockstep seed 004 from Python: a standard-library manager drives the orchestrator sidecar over stdio\n")
    data = tempfile.mkdtemp(prefix="lockstep-python-host-")
    node = os.environ.get("NODE", "node")
    child = subprocess.Popen(
        [node, "--conditions=lockstep-source", "--import", "tsx", ORCHESTRATOR, "--data", data],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    say("manager", f"spawned the orchestrator, pid {child.pid}, store {data}")

    def relay_stderr():
        for line in child.stderr:
            say("orchestrator", line.decode("utf-8", "replace").rstrip())

    relay = threading.Thread(target=relay_stderr, daemon=True)
    relay.start()

    panes = {}
    view = TasksView()

    def create_pane(params):
        pane_id = f"py-pane-{len(panes) + 1}"
        panes[pane_id] = params
        say("manager", f"<- manager.createPane {params['type']} {json.dumps(params['command'])}: opened {pane_id}")
        return {"paneId": pane_id}

    def on_progress(params):
        say("manager", f"<- orchestrate.progress {params['agent']}: {params['stage']} {json.dumps(params['command'])}")

    def on_events(params):
        if params["stream"] == "tasks/orchflow":
            view.apply(params["events"])

    rpc = Connection(
        child,
        handlers={"manager.createPane": create_pane},
        listeners={"orchestrate.progress": on_progress, "events": on_events},
    )
    try:
        # hello: the protocol, the services we serve, the application we are.
        hello = rpc.request("hello", {"protocol": 1, "clientId": "python-manager", "services": SERVES, "app": APP, "capabilities": {}})
        services = {service["name"]: service["version"] for service in hello.get("services", [])}
        app = hello.get("app") or {}
        say("manager", f"hello answered: protocol {hello['protocol']}, app {app.get('name')} {app.get('version')}, services {services}, domains {hello['domains']}")
        say("manager", f"  capabilities {json.dumps(hello['capabilities'])}, epoch {hello['epoch'][:8]}")
        app_ok = app.get("name") == APP["name"] and APP_ACCEPTS[0] <= parse_version(app.get("version", "0.0.0")) < APP_ACCEPTS[1]
        served_ok = all(name in services and compatible(services[name], wanted) for name, wanted in WANTS.items())
        check(hello["protocol"] == 1 and app_ok and served_ok, "versions negotiated at hello: orchflow >=2.1.0 <3, orchestrate ^1.2.0; it accepted our manager 1.4.0 and orchflow 2.0.4")

        # The shared state: follow tasks/orchflow.
        view.load(rpc.request("subscribe", {"stream": "tasks/orchflow"}))

        # A call, answered after the orchestrator's call back.
        say("manager", '-> orchestrate.route "run tests"')
        routed = rpc.request("orchestrate.route", {"command": "run tests"})
        say("manager", f"  {json.dumps(routed)}")
        pane = routed.get("paneId")
        check(routed.get("agent") == "tester" and pane in panes and panes[pane]["command"] == "npm test", "orchestrate.route called manager.createPane back, and answered with the pane we opened")
        task = routed.get("taskId")
        rpc.pump(until=lambda: pane in view.tasks.get(task, {}).get("sessions", []))
        check(True, f"the orchestrator recorded {task} in {pane} in tasks/orchflow (version {view.version}), as events we received")

        # A notification the other way; the orchestrator completes the task in the stream.
        rpc.notify("manager.paneClosed", {"paneId": pane, "exitCode": 0})
        rpc.pump(until=lambda: view.tasks.get(task, {}).get("status") == "completed")
        check(True, f"manager.paneClosed: the orchestrator completed {task}")

        status = rpc.request("orchestrate.status", None)
        check(status.get("routed") == 1 and status.get("pid") == child.pid, f"orchestrate.status: {json.dumps(status)}")

        # Errors are JSON-RPC errors with Lockstep's codes.
        for method, params, expected in (("orchestrate.route", {"command": ""}, "INVALID_PARAMS"), ("orchestrate.teleport", {}, "METHOD_NOT_FOUND")):
            try:
                rpc.request(method, params)
                check(False, f"{method} {json.dumps(params)} was refused")
            except RpcError as error:
                check(error.name == expected, f"{method} {json.dumps(params)} is refused: {error.name} ({error.code}) {error}")
    except Exception as error:  # noqa: BLE001 — reported as a failed check
        check(False, f"the run ended early: {type(error).__name__}: {error}")
    finally:
        # Closing its stdin ends the orchestrator (the way a sidecar's life is tied to its host's).
        child.stdin.close()
        try:
            code = child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            code = child.wait()
        relay.join(timeout=5)
        shutil.rmtree(data, ignore_errors=True)
    check(code == 0, f"the orchestrator exited with code {code} once its stdin closed")

    passed = len(checks) > 0 and all(checks)
    print(f"\nAll {len(checks)} checks passed." if passed else f"\n{checks.count(False)} of {len(checks)} checks FAILED.")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
