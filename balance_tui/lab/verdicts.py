"""Provides the chaos run's verdicts: `balance-tui verify --json` run as a user would, against the changelog
(until nothing is left to apply) and against the union of the members' final exports."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from balance_tui.core.chaos import VerifyVerdict, verdict_from_verify_json
from balance_tui.lab.options import LabStepFailed
from balance_tui.lab.processes import MemberProcess
from balance_tui.lab.runs import GroupRun, LabRun
from balance_tui.session_log import export_paths

#: How long verify may keep saying "not yet applied" (members still writing their last changelog records).
CATCH_UP_TIMEOUT_S = 60.0


def run_verify(lab: LabRun, group: GroupRun, label: str, name: str,
               *args: str) -> tuple[VerifyVerdict, dict[str, Any] | None]:
    """`balance-tui verify --json` as a user would run it; its whole answer stays in verify-<name>.json."""
    argv = [sys.executable, "-m", "balance_tui", "verify", "--bootstrap-servers", lab.bootstrap,
            "--topic", group.topic, "--group", group.group, "--json", "--require-caught-up", *args]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=240, env=lab.child_environment(),
                                stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired:
        return VerifyVerdict(label, False, error="verify ran for more than 240 s"), None
    (lab.output / f"verify-{name}.json").write_text(result.stdout or result.stderr, encoding="utf-8")
    if result.returncode in (0, 1):
        try:
            document = json.loads(result.stdout)
        except ValueError:
            return VerifyVerdict(label, False, error=f"unreadable output: {result.stdout[:200]!r}"), None
        return verdict_from_verify_json(label, document), document
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    return VerifyVerdict(label, False, error=lines[-1] if lines else f"exit code {result.returncode}"), None


def verify_changelog(lab: LabRun, group: GroupRun) -> VerifyVerdict:
    """Against the changelog, until nothing is left to apply (members may still be writing their last records)."""
    label = "changelog against the topic"
    outcome: list[tuple[VerifyVerdict, dict[str, Any] | None]] = []

    def settled() -> bool:
        outcome[:] = [run_verify(lab, group, label, "changelog")]
        verdict, document = outcome[0]
        only_behind = (document is not None and not verdict.ok and document.get("notYetApplied")
                       and not (verdict.mismatches or verdict.applied_twice or verdict.missed)
                       and not any(document.get(key) for key in ("missing", "unexpected", "problems")))
        return not only_behind

    try:
        lab.wait_for(settled, CATCH_UP_TIMEOUT_S, lambda: "the changelog never caught up")
    except LabStepFailed:
        pass  # the last verdict says how far behind it stayed
    verdict = outcome[0][0]
    lab.say(f"chaos: verify (changelog): {'OK' if verdict.ok else verdict.error or 'FAILED'}")
    return verdict


def verify_exports(lab: LabRun, group: GroupRun, final: list[MemberProcess]) -> VerifyVerdict:
    names = ", ".join(m.name.upper() for m in final)
    label = f"union of the final exports ({names or 'no member'})"
    missing = [m.name.upper() for m in final if not export_paths(m.log_path)[0].exists()]
    if not final or missing:
        return VerifyVerdict(label, False, error=f"no export from {', '.join(missing) or 'anyone'}")
    exports = (str(export_paths(m.log_path)[0]) for m in final)
    verdict, _ = run_verify(lab, group, label, "exports", "--exports", *exports)
    lab.say(f"chaos: verify (exports): {'OK' if verdict.ok else verdict.error or 'FAILED'}")
    return verdict

