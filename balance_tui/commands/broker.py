"""Run the embedded Kafka-compatible broker (Tansu, memory storage) in the foreground.

Creates the transactions topic if missing, prints one line `bootstrap: 127.0.0.1:PORT`
on stdout once the broker answers Kafka requests, and runs until Ctrl-C or SIGTERM.
All data is lost when it stops. Broker output goes to a log file under the state
directory, not to the terminal.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from types import FrameType

from balance_tui.config import Settings
from balance_tui.errors import UserError
from balance_tui.kafka import admin
from balance_tui.kafka.broker import (
    EmbeddedBroker,
    clear_stale_broker,
    live_owner,
    port_is_free,
    remove_own_pid_file,
    write_pid_file,
)

HOST = "127.0.0.1"
_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0-65535, got {port}")
    return port


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=_port, default=9092,
                        help="port on 127.0.0.1 to listen on (default 9092; 0 picks a free port)")
    parser.add_argument("--reuse", action="store_true",
                        help="if a Kafka broker already answers on the port, create the topic there if "
                             "missing, print its bootstrap line and exit 0 instead of failing")
    parser.add_argument("--log", type=Path, default=None, metavar="PATH",
                        help="broker log file (default: <state dir>/logs/tansu-PORT.log)")
    parser.add_argument("--ready-timeout", type=float, default=20.0, metavar="SECONDS",
                        help="how long to wait for the broker to answer (default 20)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    port: int = args.port
    if port:
        stale = clear_stale_broker(port)
        if stale:
            print(f"balance-tui: {stale}", file=sys.stderr)
        if not port_is_free(port, HOST):
            return _port_taken(port, args, settings)

    # SIGINT, SIGTERM and SIGHUP all unwind, stop the broker and exit 0. SIGINT is set
    # explicitly: a background job of a non-interactive shell starts with it ignored.
    previous = {signum: signal.getsignal(signum) for signum in _SIGNALS}
    for signum in _SIGNALS:
        signal.signal(signum, _interrupt)
    broker = EmbeddedBroker(port=port, host=HOST, log_path=args.log)
    record = None
    try:
        broker.start(timeout=args.ready_timeout)
        assert broker.process is not None
        record = write_pid_file("broker", broker.port, tansu_pid=broker.process.pid,
                                bootstrap=broker.bootstrap, log=str(broker.log_path))
        admin.ensure_topic(broker.client_config(), settings.topic, settings.partitions)
        print(f"bootstrap: {broker.bootstrap}", flush=True)
        print(f"balance-tui: Tansu broker running (pid {broker.process.pid}, log {broker.log_path}); "
              f"Ctrl-C to stop", file=sys.stderr, flush=True)
        code = broker.process.wait()  # a signal interrupts this with KeyboardInterrupt
        raise UserError(f"the Tansu broker exited unexpectedly with code {code} "
                        f"(log {broker.log_path}): {broker.log_tail() or 'no output'}")
    except KeyboardInterrupt:
        return 0
    finally:
        # A second Ctrl-C must not abort the orderly stop.
        for signum in _SIGNALS:
            signal.signal(signum, signal.SIG_IGN)
        try:
            broker.stop()
            if record is not None:
                remove_own_pid_file(record)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def _port_taken(port: int, args: argparse.Namespace, settings: Settings) -> int:
    bootstrap = f"{HOST}:{port}"
    config = {"bootstrap.servers": bootstrap}
    if not admin.broker_answers(config, timeout=2.0):
        raise UserError(f"port {port} on {HOST} is in use by something that is not a Kafka broker; "
                        f"choose another --port (0 picks a free one)")
    if not args.reuse:
        owner = live_owner(port)
        by = f" (balance-tui broker pid {owner})" if owner else ""
        raise UserError(f"port {port} is already served by a Kafka broker{by}; "
                        f"use --reuse to use it, or --port 0 for a free port")
    if not admin.ensure_topic(config, settings.topic, settings.partitions):
        count = admin.topic_partition_count(config, settings.topic)
        if count != settings.partitions:
            print(f"balance-tui: topic {settings.topic!r} already exists with {count} partitions "
                  f"(not {settings.partitions}); left as it is", file=sys.stderr)
    print(f"bootstrap: {bootstrap}", flush=True)
    return 0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt

