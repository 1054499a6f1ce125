"""Run the exercises of LAB 1.3B with real consumer processes and measure them.

  scale       1 → 2 → 3 → 6 → 8 members (6, 3+3, 2+2+2, 1×6, 1×6 + 2 idle), then back to 1
  crash       3 members under load, one is killed with SIGKILL, the 2 survivors take over
  strategies  range, roundrobin, cooperative-sticky (and KIP-848's consumer protocol where the
              broker serves it): 2 members, a 3rd joins, one leaves, one is killed; prints
              the lab's comparison table with the measured values
  static      static membership (KIP-345): kill -9 a member with a group.instance.id and
              restart it at once, beside the same run without one
  chaos       --members (3) under traffic for --duration (120 s) of faults at seeded times
              (--seed, printed, replays the same schedule): kill -9, SIGSTOP past the session
              timeout then SIGCONT, clean restarts, group-wide strategy switches and bursts of
              them, a broker restart; then convergence and `verify`, with one row per fault

Starts a broker on a free port (--engine: Apache Kafka where it can run, else Tansu; Kafka
keeps its default 3 s initial rebalance delay), unless --bootstrap-servers is given: then that
cluster is used, with a topic and group unique to the run (deleted at the end). Session
logs, report.md/report.json and summary.md stay in --output (default: the state
directory's lab/<scenario>-<time>/). Session timeout 10000 ms as in the lab; --fast uses
2000 ms (joins take 1 s instead of 5 s on the embedded broker). Exit 1 if a step's
assignment is not reached in time, or if a chaos run's verdict is not clean. How each
number is measured: docs/lab.md.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from pathlib import Path

from balance_tui.config import Settings
from balance_tui.core.chaos import FAULT_HELP, FAULT_KINDS, parse_fault_kinds
from balance_tui.core.traffic import PROFILES
from balance_tui.errors import ConfigError, UserError
from balance_tui.flags import SECRET_FLAGS
from balance_tui.lab.options import (
    DEFAULT_PROFILES,
    FAST_HEARTBEAT_INTERVAL_MS,
    FAST_SESSION_TIMEOUT_MS,
    LAB_HEARTBEAT_INTERVAL_MS,
    LAB_SESSION_TIMEOUT_MS,
    LAB_STRATEGY,
    LAB_WORK_MS,
    SCENARIOS,
    LabOptions,
    default_output,
)
from balance_tui.lab.runs import LabRun
from balance_tui.lab.scenarios import SCENARIO_STEPS, sigterm_as_interrupt

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


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 1 <= value <= 86_400:
        raise argparse.ArgumentTypeError(f"{text} must be between 1 and 86400 seconds")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must be 0 or more")
    return value


def _members(text: str) -> int:
    value = _count(text)
    if value < 3:
        raise argparse.ArgumentTypeError(f"{text}: chaos needs at least 3 members (a burst comes from three)")
    return value


def _faults(text: str) -> tuple[str, ...]:
    try:
        return parse_fault_kinds(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


#: Flags of `lab chaos` only, with the values a chaos run takes when they are not given.
CHAOS_FLAGS = {"duration": "--duration", "seed": "--seed", "members": "--members", "faults": "--faults"}


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
    chaos = parser.add_argument_group("lab chaos")
    chaos.add_argument("--duration", type=_seconds, default=None, metavar="S",
                       help="seconds of fault injection (default 120); convergence and verify come after")
    chaos.add_argument("--seed", type=_seed, default=None, metavar="N",
                       help="the schedule's seed (default: a random one, printed and kept in lab.json); "
                            "the same seed replays the same faults at the same times")
    chaos.add_argument("--members", type=_members, default=None, metavar="N", help="members under test (default 3)")
    chaos.add_argument("--faults", type=_faults, default=None, metavar="KINDS",
                       help="comma-separated kinds of fault (default all; broker only with the lab's own broker): "
                            + "; ".join(f"{kind}: {FAULT_HELP[kind]}" for kind in FAULT_KINDS))


def options_from_args(args: argparse.Namespace, settings: Settings) -> LabOptions:
    refused = [flag for field, flag in REFUSED_SETTING_FLAGS.items() if hasattr(args, field)]
    if refused:
        raise UserError(f"the lab sets up its own topic, group and session logs: drop {', '.join(refused)}")
    if args.scenario == "strategies" and hasattr(args, "strategy"):
        raise UserError("`lab strategies` runs every strategy: --strategy is for scale, crash, static and chaos")
    if hasattr(args, "group_instance_id"):
        raise UserError("lab members get their instance ids from the lab: use --static, not --instance-id")
    given = [flag for name, flag in CHAOS_FLAGS.items() if getattr(args, name, None) is not None]
    if given and args.scenario != "chaos":
        raise ConfigError(f"{', '.join(given)}: for `lab chaos` only")
    cluster = hasattr(args, "bootstrap_servers")
    faults = args.faults or tuple(kind for kind in FAULT_KINDS if not (cluster and kind == "broker"))
    if cluster and "broker" in faults:
        raise ConfigError("--faults broker restarts the broker the lab starts itself: drop it, or --bootstrap-servers")
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
        duration_s=args.duration if args.duration is not None else 120.0,
        seed=args.seed if args.seed is not None else secrets.randbelow(1_000_000),
        members=args.members if args.members is not None else 3,
        faults=faults,
    )


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
    seed = f", seed {options.seed}" if options.scenario == "chaos" else ""
    print(f"lab {options.scenario}: session timeout {options.session_timeout_ms} ms, traffic {options.profile}{seed}, "
          f"output {options.output}", file=sys.stderr, flush=True)
    try:
        with sigterm_as_interrupt():
            tables = lab.run(SCENARIO_STEPS[options.scenario])
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
    if lab.failure:
        print(f"balance-tui: error: lab {options.scenario}: not clean: {lab.failure}", file=sys.stderr)
        return 1
    return 0
