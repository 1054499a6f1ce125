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
from balance_tui.config import STRATEGIES, Settings, load_settings
from balance_tui.errors import ConfigError, UserError
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

#: Settings that have a command-line flag: field name -> (flag, help).
SETTING_FLAGS: dict[str, tuple[str, str]] = {
    "bootstrap_servers": ("--bootstrap-servers", "Kafka bootstrap servers (default localhost:9092)"),
    "topic": ("--topic", "transactions topic (default banking.transactions)"),
    "group": ("--group", "consumer group id (default balance-service)"),
    "partitions": ("--partitions", "partition count when creating the topic (default 6)"),
    "strategy": ("--strategy", f"assignment strategy: {', '.join(STRATEGIES)} (default cooperative-sticky; "
                               "consumer is KIP-848's protocol)"),
    "remote_assignor": ("--remote-assignor", "with --strategy consumer: the broker's assignor, uniform or range"),
    "group_instance_id": ("--instance-id", "static membership (group.instance.id): same id, same partitions "
                                           "after a quick restart"),
    "session_timeout_ms": ("--session-timeout-ms", "consumer session timeout (default 10000)"),
    "heartbeat_interval_ms": ("--heartbeat-interval-ms", "consumer heartbeat interval (default 3000)"),
    "work_ms": ("--work-ms", "simulated processing time per transaction in ms (default 2)"),
    "changelog": ("--changelog", "on or off: write and restore the balance changelog (default on)"),
    "commit_interval_ms": ("--commit-interval-ms", "offset commit interval (default 1000)"),
    "flush_interval_ms": ("--flush-interval-ms", "changelog write interval: one record per changed customer "
                          "(default 1000)"),
    "lag_alert_threshold": ("--lag-alert-threshold", ("alert when my lag stays above N messages, or Ns seconds of "
                                                      "lag, for --lag-alert-for (default 1000; off for none)")),
    "lag_alert_for": ("--lag-alert-for", "how long the lag must stay above the threshold: 5m, 300s (default 5m)"),
    "lag_window": ("--lag-window", "window of the Burrow-style lag status OK/WARN/STALL/STOP/REWIND (default 60s)"),
    "session_log": ("--session-log", "JSON Lines session log path (default: under the state directory)"),
    "security_protocol": ("--security-protocol", "plaintext, ssl, sasl_plaintext or sasl_ssl"),
    "sasl_mechanism": ("--sasl-mechanism", "SASL mechanism (PLAIN, SCRAM-SHA-256, ...)"),
    "sasl_username": ("--sasl-username", "SASL username"),
    "sasl_password": ("--sasl-password", "SASL password (prefer BALANCE_TUI_SASL_PASSWORD)"),
    "ssl_ca_location": ("--ssl-ca-location", "CA bundle to verify the brokers"),
    "ssl_certificate_location": ("--ssl-certificate-location", "client certificate (mutual TLS)"),
    "ssl_key_location": ("--ssl-key-location", "client private key (mutual TLS)"),
    "ssl_key_password": ("--ssl-key-password", "client private key password (prefer BALANCE_TUI_SSL_KEY_PASSWORD)"),
    "http_port": ("--http-port", "serve the HTTP API on this port (default off; 0 picks a free port)"),
    "http_host": ("--http-host", "address the HTTP API listens on (default 127.0.0.1; 0.0.0.0 in containers)"),
    "broker_engine": ("--engine", "broker that `broker` and `demo` start: auto, kafka or tansu (default auto)"),
    "kafka_version": ("--kafka-version", "Apache Kafka release to fetch when no Kafka home is given (default 4.4.0)"),
    "kafka_home": ("--kafka-home", "an Apache Kafka distribution to use (default: KAFKA_HOME)"),
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


def _settings_parent() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
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
