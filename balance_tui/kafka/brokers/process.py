"""Provides what both local brokers share: a child process that dies with its parent, pid files.

Two safety nets keep a broker from outliving the program that started it:

* on Linux the child is started through a tiny wrapper that sets
  `prctl(PR_SET_PDEATHSIG, SIGKILL)` before exec'ing the broker (tansu or java), so the
  kernel kills it when its parent dies, even by SIGKILL;
* `balance-tui broker` records pid files in `locations.run_dir()`, which the next
  start on the same port and `balance-tui down` use to find and stop leftovers.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from balance_tui import locations
from balance_tui.errors import UserError
from balance_tui.kafka import admin

#: Runs in a fresh interpreter between fork and the broker: no Python code runs in the forked
#: child of a multi-threaded parent (librdkafka threads), unlike `preexec_fn`.
#: argv: <expected parent pid> <program> <args...>
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


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True if a listener could bind `host:port` now (SO_REUSEADDR, like the brokers' listeners)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as error:
            if error.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
        return True


def accepts_connections(host: str, port: int) -> bool:
    """True if something accepts a TCP connection on `host:port` within half a second."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class PortTaken(Exception):
    """Someone else holds a port the broker was asked to listen on."""


class BrokerProcess:
    """A broker child process on `host:port` (port 0: a free one), its output in a log file.

    Subclasses say how to run it (`_command`), how to tell that the port was taken from its
    log (`_port_taken_in`), and what to do before each start (`_prepare`). Readiness is a
    Kafka metadata round trip that must carry `cluster_id`, so a squatter on the port is
    never mistaken for our broker.

    The broker is killed with its parent on Linux. That is tied to the *thread* that calls
    `start()` (PR_SET_PDEATHSIG semantics): start it from a thread that lives as long as the
    broker should, or pass `die_with_parent=False` and stop it yourself.
    """

    #: "tansu" or "kafka": the `--engine` value that runs this broker.
    engine = ""
    #: What the user reads: "Tansu", "Apache Kafka".
    display_name = ""

    def __init__(self, port: int = 0, host: str = "127.0.0.1", log_path: Path | None = None,
                 *, die_with_parent: bool = True) -> None:
        self.host = host
        self.port = port
        self.requested_port = port
        self.log_path = log_path
        self._default_log = log_path is None
        self.die_with_parent = die_with_parent and sys.platform.startswith("linux")
        self.process: subprocess.Popen[bytes] | None = None
        self.cluster_id = ""
        self._log: IO[bytes] | None = None

    # -- what a subclass provides ------------------------------------------------------------

    @property
    def version(self) -> str:
        """The broker software's version, as shown to the user."""
        raise NotImplementedError

    def _prepare(self) -> None:
        """Called once per start attempt, after the port is chosen and before the spawn."""

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _environment(self) -> dict[str, str]:
        return dict(os.environ)

    def _port_taken_in(self, log_tail: str) -> bool:
        raise NotImplementedError

    def _default_log_path(self) -> Path:
        return locations.state_dir() / "logs" / f"{self.engine}-{self.port}.log"

    # -- the common part ---------------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        """`host:port` for `bootstrap.servers` (valid once started)."""
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def label(self) -> str:
        """`Apache Kafka 4.4.0` or `Tansu 0.6.0`."""
        return f"{self.display_name} {self.version}"

    def client_config(self) -> dict[str, str]:
        return {"bootstrap.servers": self.bootstrap}

    def start(self, timeout: float = 30.0) -> BrokerProcess:
        """Spawn the broker and return once it answers Kafka metadata requests.

        Raises UserError (with the broker's last log lines) if it exits or stays silent.
        """
        if self.process is not None and self.process.poll() is None:
            return self
        deadline = time.monotonic() + timeout
        # A port picked by free_port() can be taken before the broker binds it; then pick again.
        attempts = 3 if self.requested_port == 0 else 1
        for attempt in range(attempts):
            self.port = self.requested_port or free_port(self.host)
            if self.requested_port and not port_is_free(self.port, self.host):
                raise UserError(f"port {self.port} on {self.host} is already in use")
            self._prepare()
            self._spawn()
            try:
                self._wait_ready(deadline, timeout)
                return self
            except PortTaken:
                self.stop()
                if attempt == attempts - 1:
                    raise UserError(f"the {self.display_name} broker could not bind {self.bootstrap}: "
                                    "address in use") from None
            except BaseException:
                self.stop()
                raise
        raise AssertionError("unreachable")

    def stop(self, timeout: float = 10.0) -> None:
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

    def kill(self) -> None:
        """SIGKILL, as a crash would: no orderly shutdown."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 5) -> str:
        """The last lines of this broker's log, joined into one line."""
        return log_tail(self.log_path, lines)

    def __enter__(self) -> BrokerProcess:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.bootstrap!r}, pid={self.pid})"

    def _spawn(self) -> None:
        if self._default_log:
            self.log_path = self._default_log_path()
        assert self.log_path is not None
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        command = self._command()
        if self.die_with_parent:
            command = [sys.executable, "-I", "-S", "-c", _PDEATHSIG_WRAPPER, str(os.getpid()), *command]
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            env=self._environment(),
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
                if self._port_taken_in(tail):
                    raise PortTaken
                raise UserError(f"the {self.display_name} broker exited with code {code} before it was ready "
                                f"(log {self.log_path}): {tail or 'no output'}")
            # Cheap TCP probe first; then a real metadata round trip, checking that the
            # answer comes from *our* broker (its cluster id), not a squatter on the port.
            if accepts_connections(self.host, self.port):
                found = admin.cluster_id(config, timeout=max(min(2.0, deadline - time.monotonic()), 0.1))
                if found == self.cluster_id and self.process.poll() is None:
                    return
                if found is not None and found != self.cluster_id:
                    raise PortTaken
            if time.monotonic() >= deadline:
                raise UserError(f"the {self.display_name} broker did not answer Kafka requests on {self.bootstrap} "
                                f"within {timeout:g}s (log {self.log_path}): {self.log_tail() or 'no output'}")
            time.sleep(0.05)  # poll interval for the readiness condition, bounded by the deadline


def log_tail(path: Path | None, lines: int = 5) -> str:
    """The last non-empty lines of a log file (colour codes removed), joined into one line."""
    if path is None:
        return ""
    try:
        with path.open("rb") as handle:
            handle.seek(max(handle.seek(0, os.SEEK_END) - 8192, 0))  # a long-running log can be big
            text = handle.read().decode(errors="replace")
    except OSError:
        return ""
    kept = [_ANSI.sub("", line).strip() for line in text.splitlines() if line.strip()]
    return " | ".join(kept[-lines:])


# -- pid files: what `balance-tui broker`/`demo` started, for `down` and stale cleanup ---------


def pid_file(kind: str, port: int) -> Path:
    """`<run dir>/<kind>-<port>.json`, e.g. broker-9092.json or producer-9092.json."""
    return locations.run_dir() / f"{kind}-{port}.json"


def write_pid_file(kind: str, port: int, **fields: Any) -> Path:
    """Record this process (and any extra pids in `fields`) for `balance-tui down`."""
    record = {"kind": kind, "pid": os.getpid(), "port": port,
              "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), **fields}
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


def local_broker_record(bootstrap: str) -> dict[str, Any] | None:
    """The pid-file record of a live local broker serving `bootstrap`, if balance-tui started one."""
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    if host not in ("127.0.0.1", "localhost", "::1", "[::1]") or not port.isdigit():
        return None
    record = read_pid_file(pid_file("broker", int(port)))
    if record is None:
        return None
    alive = [pid for pid in _record_pids(record) if is_our_process(pid)]
    return record if alive else None


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
    """True if `pid` is alive and is a balance-tui, tansu, or our Kafka process (guards against pid reuse).

    Our Kafka is a `java ... kafka.Kafka <server.properties>` whose properties file
    balance-tui wrote: the file carries a marker line naming balance-tui.
    """
    if pid <= 0 or pid == os.getpid():
        return False
    cmdline = process_cmdline(pid)
    if not cmdline:
        return False
    if any("balance-tui" in part or "balance_tui" in part or Path(part).name.startswith("tansu")
           for part in cmdline[:4]):
        return True
    if "kafka.Kafka" in cmdline and cmdline[-1].endswith(".properties"):
        try:
            return OUR_KAFKA_MARKER in Path(cmdline[-1]).read_text(errors="replace")[:200]
        except OSError:
            return False
    return False


#: First line of every server.properties balance-tui writes: how `down` recognises our Kafka.
OUR_KAFKA_MARKER = "# written by balance-tui"


def _record_pids(record: dict[str, Any]) -> list[int]:
    """`pid` first, then every other `*_pid` field (tansu_pid, kafka_pid, ...)."""
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
    """Stop a broker left behind on `port` by a `balance-tui broker` that died; say what was done.

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
        name = record.get("engine_name") or "Tansu"
        return f"stopped a stale {name} broker on port {port} (pid {', '.join(map(str, leftovers))})"
    return None


def live_owner(port: int) -> int | None:
    """Pid of the live `balance-tui broker` recorded for `port`, if any."""
    record = read_pid_file(pid_file("broker", port))
    owner = record.get("pid") if record else None
    return owner if isinstance(owner, int) and is_our_process(owner) else None


def stop_recorded(port: int | None = None, timeout: float = 5.0) -> list[str]:
    """Stop every process recorded in the run dir (or only those for `port`); one line per stop.

    Producers go first so they do not spend their last seconds failing against a
    stopped broker. Owners are signalled before the children they manage (tansu, java), so
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
        # The owner first: a `balance-tui broker` stops its broker itself when asked to (Kafka's
        # orderly shutdown takes a few seconds, so the owner is given the time to wait for it).
        terminate([pid for label, pid in alive if label == "pid"], max(timeout, 15.0) if _kind(path, record)
                  == "broker" else timeout)
        terminate([pid for label, pid in alive if label != "pid"], timeout)
        path.unlink(missing_ok=True)
        if alive:
            described = ", ".join(f"{label} {pid}" for label, pid in alive)
            what = _kind(path, record)
            if what == "broker" and record.get("engine_name"):
                what = f"{record['engine_name']} broker"
            lines.append(f"stopped {what} on port {record.get('port', '?')} ({described})")
    return lines


def _kind(path: Path, record: dict[str, Any]) -> str:
    return str(record.get("kind") or path.stem.rpartition("-")[0] or path.stem)
