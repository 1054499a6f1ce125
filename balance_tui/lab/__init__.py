"""Provides `balance-tui lab`: the exercises of LAB 1.3B run with real member processes, then measured.

A `LabRun` starts the embedded broker on a free port (or uses the cluster named by an explicit
`--bootstrap-servers`), and for each consumer group of its scenario a unique topic, a traffic
generator and `balance-tui --headless` members. It acts on the members (start, SIGTERM,
SIGKILL) and after each action waits, with a deadline, for the assignment the step expects,
read from the members' own session logs (the embedded broker cannot describe groups).
Everything it started is stopped on the way out, whatever happened. The session logs
stay in the output directory, with `report.md`/`report.json` built by `core.report` and
the lab's tables (`summary.md`) built by `lab.measure`; `lab.chaos` runs the chaos scenario.
Design and timings: docs/lab.md.
"""
