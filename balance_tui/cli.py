"""The `balance-tui` command line: one parser, one module per subcommand under `commands/`.

Every command module exposes `add_arguments(parser)` and `run(args, settings) -> int`.
Errors the user can fix (bad flag, bad setting, unreachable broker) are one line on
stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any, NoReturn

from confluent_kafka import KafkaException

from balance_tui import __version__
from balance_tui.config import Settings, load_settings
from balance_tui.errors import ConfigError, UserError
from balance_tui.flags import SETTING_FLAGS
from balance_tui.kafka import error_reason

#: Subcommand name -> (module under balance_tui.commands, one-line help).
COMMANDS: dict[str, tuple[str, str]] = {
    "dashboard": ("dashboard", "open the live dashboard (the default when no command is given)"),
    "broker": ("broker", "run a local broker in the foreground: Apache Kafka (KRaft) or Tansu (--engine)"),
    "kafka": ("kafka", "run Apache Kafka's own command-line tools (consumer-groups, topics, ...)"),
    "produce": ("produce", "produce lab-shaped bank transactions (traffic generator)"),
    "demo": ("demo", "start broker and traffic if needed (detached), then open the dashboard"),
    "down": ("down", "stop the broker and traffic generator started by `demo`"),
    "verify": ("verify", "recompute every balance from the topic and check the changelog or exports"),
    "report": ("report", "merge session logs of several terminals into one rebalance story"),
    "lab": ("lab", "run the lab's exercises with real consumer processes and measure them"),
}

class OneLineErrorParser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line instead of usage plus error.

    Abbreviated flags are refused: `--sasl-pass` would otherwise be `--sasl-password` under a
    name that the lab's command-line redaction does not know.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _settings_parent() -> OneLineErrorParser:
    parent = OneLineErrorParser(add_help=False)
    group = parent.add_argument_group("settings (also BALANCE_TUI_<NAME> env vars or a TOML file)")
    # SUPPRESS, not None: the subparser's default would otherwise overwrite a --config
    # given before the subcommand (`balance-tui --config x.toml down`).
    group.add_argument("--config", type=Path, default=argparse.SUPPRESS, metavar="PATH",
                       help="TOML configuration file (default: the user's config dir)")
    for field, (flag, help_text) in SETTING_FLAGS.items():
        # SUPPRESS keeps unset flags out of the namespace, so env and file can apply.
        group.add_argument(flag, dest=field, default=argparse.SUPPRESS, help=help_text)
    return parent


def build_parser() -> argparse.ArgumentParser:
    parent = _settings_parent()
    parser = OneLineErrorParser(
        prog="balance-tui",
        description="Watch a Kafka consumer group scale and rebalance on a live bank balance service.",
        parents=[parent],
    )
    parser.add_argument("--version", action="version", version=f"balance-tui {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineErrorParser)
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(f"balance_tui.commands.{module_name}")
        sub = subparsers.add_parser(name, help=help_text, description=module.__doc__, parents=[parent])
        module.add_arguments(sub)
        sub.set_defaults(command_module=module)
    # With no subcommand the dashboard runs, so its own flags (e.g. --headless) are accepted here too.
    dashboard = importlib.import_module("balance_tui.commands.dashboard")
    dashboard.add_arguments(parser)
    parser.set_defaults(command_module=dashboard)
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {field: getattr(args, field) for field in SETTING_FLAGS if hasattr(args, field)}
    return load_settings(overrides, config_file=getattr(args, "config", None))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = settings_from_args(args)
        if getattr(args.command_module, "USES_KAFKA", True):
            from balance_tui.kafka.admin import check_client_config

            check_client_config(settings.client_config())
    except ConfigError as error:
        print(f"balance-tui: error: {error}", file=sys.stderr)
        return 2
    try:
        return int(args.command_module.run(args, settings) or 0)
    except UserError as error:
        print(f"balance-tui: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 130
    except KafkaException as error:  # a Kafka client error nobody foresaw: still one line, not a traceback
        print(f"balance-tui: error: Kafka client: {error_reason(error)}", file=sys.stderr)
        return 1
