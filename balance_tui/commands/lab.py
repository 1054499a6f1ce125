"""Run the exercises of LAB 1.3B with real consumer processes and measure them.

  scale       1 → 2 → 3 → 6 → 8 members (6, 3+3, 2+2+2, 1×6, 1×6 + 2 idle), then back to 1
  crash       3 members under load, one is killed with SIGKILL, the 2 survivors take over
  strategies  range, roundrobin, cooperative-sticky (and KIP-848's consumer protocol where the
              broker serves it): 2 members, a 3rd joins, one leaves, one is killed; prints
              the lab's comparison table with the measured values
  static      static membership (KIP-345): kill -9 a member with a group.instance.id and
              restart it at once, beside the same run without one

Starts a broker on a free port (--engine: Apache Kafka where it can run, else Tansu; Kafka
keeps its default 3 s initial rebalance delay), unless --bootstrap-servers is given: then that
cluster is used, with a topic and group unique to the run (deleted at the end). Session
logs, report.md/report.json and summary.md stay in --output (default: the state
directory's lab/<scenario>-<time>/). Session timeout 10000 ms as in the lab; --fast uses
2000 ms (joins take 1 s instead of 5 s on the embedded broker). Exit 1 if a step's
assignment is not reached in time. How each number is measured: docs/lab.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from balance_tui.cli import SETTING_FLAGS
from balance_tui.config import SECRET_SETTINGS, Settings
from balance_tui.core.traffic import PROFILES
from balance_tui.errors import UserError
from balance_tui.lab import (
    DEFAULT_PROFILES,
    FAST_HEARTBEAT_INTERVAL_MS,
    FAST_SESSION_TIMEOUT_MS,
    LAB_HEARTBEAT_INTERVAL_MS,
    LAB_SESSION_TIMEOUT_MS,
    LAB_STRATEGY,
    LAB_WORK_MS,
    SCENARIOS,
    LabOptions,
    LabRun,
    default_output,
    sigterm_as_interrupt,
)

#: Settings flags that would contradict what the lab sets up itself.
REFUSED_SETTING_FLAGS = {"topic": "--topic", "group": "--group", "partitions": "--partitions",
                         "session_log": "--session-log"}


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value <= 20:
        raise argparse.ArgumentTypeError(f"{text} must be between 0 and 20")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("scenario", choices=SCENARIOS, help="which exercise to run")
    parser.add_argument("--fast", action="store_true",
                        help=f"session timeout {FAST_SESSION_TIMEOUT_MS} ms, heartbeat {FAST_HEARTBEAT_INTERVAL_MS} ms "
                             f"(default: the lab's {LAB_SESSION_TIMEOUT_MS} and {LAB_HEARTBEAT_INTERVAL_MS}); "
                             "explicit --session-timeout-ms/--heartbeat-interval-ms win")
    parser.add_argument("--output", "-o", type=Path, default=None, metavar="DIR",
                        help="directory for the session logs and reports (must be empty or new)")
    parser.add_argument("--profile", choices=sorted(PROFILES), default=None,
                        help="traffic during the run (default: black-friday for scale, peak otherwise)")
    parser.add_argument("--static", action="store_true",
                        help="give every member a stable group.instance.id (static membership, KIP-345)")
    parser.add_argument("--hold", type=_count, default=2, metavar="N",
                        help="after each step, keep the load until every member logged N more `stats` "
                             "lines (5 s each; default 2, so lag before and after each rebalance is measured; "
                             "0 goes straight on)")


def options_from_args(args: argparse.Namespace, settings: Settings) -> LabOptions:
    refused = [flag for field, flag in REFUSED_SETTING_FLAGS.items() if hasattr(args, field)]
    if refused:
        raise UserError(f"the lab sets up its own topic, group and session logs: drop {', '.join(refused)}")
    if args.scenario == "strategies" and hasattr(args, "strategy"):
        raise UserError("`lab strategies` runs every strategy: --strategy is for scale, crash and static")
    if hasattr(args, "group_instance_id"):
        raise UserError("lab members get their instance ids from the lab: use --static, not --instance-id")
    # Only the flags count, not env or config file: a lab is reproducible from its command line.
    session_timeout = (settings.session_timeout_ms if hasattr(args, "session_timeout_ms")
                       else FAST_SESSION_TIMEOUT_MS if args.fast else LAB_SESSION_TIMEOUT_MS)
    heartbeat = (settings.heartbeat_interval_ms if hasattr(args, "heartbeat_interval_ms")
                 else FAST_HEARTBEAT_INTERVAL_MS if args.fast else LAB_HEARTBEAT_INTERVAL_MS)
    if heartbeat >= session_timeout:
        raise UserError(f"heartbeat interval ({heartbeat} ms) must be lower than the session timeout "
                        f"({session_timeout} ms)")
    output = args.output if args.output is not None else default_output(args.scenario)
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise UserError(f"{output}: exists and is not an empty directory (the report would mix runs)")
    return LabOptions(
        scenario=args.scenario,
        output=output,
        strategy=settings.strategy if hasattr(args, "strategy") else LAB_STRATEGY,
        session_timeout_ms=session_timeout,
        heartbeat_interval_ms=heartbeat,
        profile=args.profile or DEFAULT_PROFILES[args.scenario],
        hold=args.hold,
        cluster=settings if hasattr(args, "bootstrap_servers") else None,
        argv=("balance-tui", *redact_argv(sys.argv[1:])),
        work_ms=settings.work_ms if hasattr(args, "work_ms") else LAB_WORK_MS,
        member_flags=member_flags(args, settings),
        engine=settings.broker_engine if hasattr(args, "broker_engine") else "auto",
        kafka_version=settings.kafka_version,
        kafka_home=settings.kafka_home,
        static=args.static,
    )


#: The flags of the secret settings, whose values a recorded command line must not hold.
SECRET_FLAGS = tuple(SETTING_FLAGS[name][0] for name in SECRET_SETTINGS)


def redact_argv(argv: list[str]) -> list[str]:
    """The command line as the lab records it (lab.json, summary.md): secret flag values replaced."""
    redacted: list[str] = []
    hide_next = False
    for word in argv:
        if hide_next:
            redacted.append("***")
            hide_next = False
        elif word in SECRET_FLAGS:
            redacted.append(word)
            hide_next = True
        elif word.startswith(tuple(f"{flag}=" for flag in SECRET_FLAGS)):
            redacted.append(word.split("=", 1)[0] + "=***")
        else:
            redacted.append(word)
    return redacted


def member_flags(args: argparse.Namespace, settings: Settings) -> tuple[str, ...]:
    """The member settings given on the lab's command line, passed on to every member."""
    flags: list[str] = []
    if hasattr(args, "changelog"):
        flags += ["--changelog", "on" if settings.changelog else "off"]
    if hasattr(args, "remote_assignor") and settings.remote_assignor:
        flags += ["--remote-assignor", settings.remote_assignor]
    if hasattr(args, "commit_interval_ms"):
        flags += ["--commit-interval-ms", str(settings.commit_interval_ms)]
    return tuple(flags)


def run(args: argparse.Namespace, settings: Settings) -> int:
    options = options_from_args(args, settings)
    lab = LabRun(options)
    print(f"lab {options.scenario}: session timeout {options.session_timeout_ms} ms, traffic {options.profile}, "
          f"output {options.output}", file=sys.stderr, flush=True)
    try:
        with sigterm_as_interrupt():
            tables = lab.run()
    except KeyboardInterrupt:
        print(f"interrupted: everything started was stopped; logs and reports so far in {options.output}",
              file=sys.stderr)
        return 130
    except UserError as error:
        # Same class, so the exit code stays (3 for an unreachable broker).
        raise type(error)(f"{error} (logs and reports so far in {options.output})") from None
    print(tables)
    print()
    for group in lab.groups:
        if group.report_path is not None:
            print(f"report ({group.label}): {group.report_path}")
    print(f"summary: {options.output / 'summary.md'}")
    return 0
