"""Open the live dashboard (or run the same consumer headless with --headless).

Each process joins the consumer group as one member; open several terminals to
watch partitions move between them.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from balance_tui.config import CONSUMER_PROTOCOL, Settings
from balance_tui.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--headless", action="store_true", default=argparse.SUPPRESS,
                        help="no UI: print one line per event and a periodic status (containers, CI, scripts); "
                             "commands on stdin: strategy NAME, group-strategy NAME, restart, pause, work +/-MS, "
                             "export, quit")
    parser.add_argument("--consumer-id", default=argparse.SUPPRESS, metavar="ID",
                        help="consumer id (default balance-worker-<host>-<8 hex>)")
    parser.add_argument("--connect-timeout", type=float, default=argparse.SUPPRESS, metavar="SECONDS",
                        help="how long to wait for the broker before giving up (default 10)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from balance_tui.kafka.worker import make_consumer_id

    headless = getattr(args, "headless", False)
    consumer_id = getattr(args, "consumer_id", None) or make_consumer_id()
    port = settings.http_port
    api = None
    if port is not None:
        # Before the broker wait, so health and liveness answer (Connecting) meanwhile.
        api = _start_api(args, settings, consumer_id, port, headless)
    try:
        return _run_member(args, settings, consumer_id, headless, api)
    finally:
        if api is not None:
            api.stop()


def _start_api(args: argparse.Namespace, settings: Settings, consumer_id: str, port: int, headless: bool) -> Any:
    from balance_tui.api.server import start_api
    from balance_tui.api.store import ApiStore

    host = settings.http_host
    # Headless, no screen takes the balance batches in: the store acknowledges them instead.
    store = ApiStore(consumer_id, settings.group, settings.topic, acknowledges_balances=headless)
    api = start_api(host, port, store, quiet=not headless)
    print(f"balance-tui: HTTP API on {api.url} (Swagger UI {api.url}/swagger, Prometheus {api.url}/metrics)",
          file=sys.stderr, flush=True)
    return api


def _run_member(args: argparse.Namespace, settings: Settings, consumer_id: str, headless: bool, api: Any) -> int:
    from balance_tui.kafka.admin import wait_for_broker
    from balance_tui.kafka.worker import ConsumerWorker, tune_garbage_collector

    timeout = getattr(args, "connect_timeout", 10.0)
    interactive = sys.stderr.isatty()
    if interactive:  # a blank terminal for up to `timeout` seconds would look like a hang
        sys.stderr.write(f"balance-tui: connecting to {settings.bootstrap_servers} (up to {timeout:g} s)…\r")
        sys.stderr.flush()
    try:
        wait_for_broker(settings.client_config(), timeout=timeout)
    finally:
        if interactive:
            sys.stderr.write("\r\033[K")  # the error, if any, takes the line
            sys.stderr.flush()
    if settings.strategy == CONSUMER_PROTOCOL:
        from balance_tui.core.broker_profile import consumer_protocol_refusal
        from balance_tui.kafka.admin import describe_broker_of

        refusal = consumer_protocol_refusal(describe_broker_of(settings.client_config()), settings.strategy)
        if refusal:
            raise ConfigError(f"--strategy consumer: {refusal}")
    tune_garbage_collector()
    # The API serves balances in headless mode too, so the worker publishes them when it is on.
    worker: Any = ConsumerWorker(settings, consumer_id=consumer_id, publish_balances=not headless or api is not None)
    if api is not None:
        from balance_tui.api.tee import TeeWorker

        worker = TeeWorker(worker, api.store)
    if headless:
        from balance_tui.headless import run_headless

        code = run_headless(worker, commands=None if sys.stdin is None or sys.stdin.isatty() else sys.stdin)
        if code != 0:
            # The consumer is stuck inside librdkafka: interpreter shutdown would wait for it.
            sys.stdout.flush()
            os._exit(code)
        return code

    from balance_tui.ui.app import BalanceApp

    app = BalanceApp(settings, worker)
    outcome = app.run()
    print(f"session log: {worker.log_path}", file=sys.stderr)
    if api is not None:
        print(f"HTTP API was on {api.url}", file=sys.stderr)
    abandoned: tuple = ()
    if outcome is not None and not outcome.clean:
        abandoned = worker.abandon("quit: the consumer did not leave the group in time (broker unreachable?)")
    # The app's last export, or the worker's final one when the app saw none.
    for path in (outcome.export_paths if outcome is not None else ()) or worker.final_export or abandoned:
        print(f"export: {path}", file=sys.stderr)
    if outcome is not None and not outcome.clean:
        # The consumer is stuck inside librdkafka (broker gone?): interpreter shutdown would wait for it.
        print("the consumer did not leave the group in time; exiting anyway", file=sys.stderr)
        sys.stderr.flush()
        os._exit(1)
    return app.return_code or 0
