"""Where balance-tui keeps its files, following the XDG conventions (via platformdirs)."""

from __future__ import annotations

from pathlib import Path

from platformdirs import PlatformDirs

_DIRS = PlatformDirs(appname="balance-tui", appauthor=False)


def config_file() -> Path:
    """The optional TOML configuration file read when `--config` is not given."""
    return Path(_DIRS.user_config_dir) / "config.toml"


def state_dir() -> Path:
    """Session logs and exports live here unless `--session-log` says otherwise."""
    path = Path(_DIRS.user_state_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path


def sessions_dir() -> Path:
    """Default directory of the JSON Lines session logs."""
    path = state_dir() / "sessions"
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_dir() -> Path:
    """Pid files of the broker and generator started by `balance-tui demo`."""
    path = state_dir() / "run"
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    """Downloads worth keeping between runs (Apache Kafka's jars): the user cache directory."""
    path = Path(_DIRS.user_cache_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path
