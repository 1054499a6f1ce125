"""The image without a container engine: the Dockerfile's layers built into a venv, then its command run.

The build stage's COPY and RUN lines are carried out as written (only /opt/balance-tui moves into
a temporary directory), and the final stage's ENTRYPOINT + CMD run with the Deployment's
ConfigMap as environment, against the session broker. The one change: the CMD's port 8080 is
swapped for a free one, since other programs on this machine may hold 8080.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from balance_tui.kafka.admin import ensure_topic
from balance_tui.session_log import read_session_log
from tests.deploy_files import KUBERNETES, ROOT, by_kind, dockerfile_instructions, env_of, final_stage, load_documents
from tests.helpers import free_port, wait_until

pytestmark = pytest.mark.broker

IMAGE_PREFIX = "/opt/balance-tui"


def build_like_the_dockerfile(workdir: Path) -> Path:
    """The build stage, step by step: ENV, WORKDIR, COPY from the context, RUN. Returns the venv."""
    instructions = [i for i in dockerfile_instructions() if i.stage == 0]
    prefix = workdir / "opt" / "balance-tui"
    env = {**os.environ}
    cwd = workdir
    for instruction in instructions:
        if instruction.keyword == "ENV":
            env.update(env_of(instruction))
        elif instruction.keyword == "WORKDIR":
            cwd = workdir / instruction.argument.lstrip("/")
            cwd.mkdir(parents=True, exist_ok=True)
        elif instruction.keyword == "COPY":
            *sources, target = instruction.argument.split()
            for source in sources:
                destination = cwd / target
                if (ROOT / source).is_dir():
                    shutil.copytree(ROOT / source, destination if target != "./" else cwd / source,
                                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
                else:
                    shutil.copy2(ROOT / source, cwd / Path(source).name)
        elif instruction.keyword == "RUN":
            command = instruction.argument.replace(IMAGE_PREFIX, str(prefix))
            result = subprocess.run(["/bin/sh", "-c", command], cwd=cwd, env=env, capture_output=True, text=True,
                                    timeout=540, check=False)
            assert result.returncode == 0, f"RUN {command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return prefix


@pytest.mark.timeout(900)
def test_the_images_command_serves_the_api_and_leaves_cleanly(broker, unique, tmp_path: Path) -> None:
    venv = build_like_the_dockerfile(tmp_path / "image")
    final = final_stage(dockerfile_instructions())
    (entrypoint,) = [i.exec_form() for i in final if i.keyword == "ENTRYPOINT"]
    (cmd,) = [i.exec_form() for i in final if i.keyword == "CMD"]
    port = free_port()
    command = [*entrypoint, *[str(port) if arg == "8080" else arg for arg in cmd]]

    image_env: dict[str, str] = {}
    for instruction in final:
        if instruction.keyword == "ENV":
            image_env.update(env_of(instruction))
    deployment_documents = [d for path in KUBERNETES.glob("*.yaml") for d in load_documents(path)]
    config_map = by_kind(deployment_documents, "ConfigMap")["data"]
    topic, group = unique("img-tx"), unique("img-grp")
    ensure_topic({"bootstrap.servers": broker.bootstrap}, topic, 6)
    environment = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        **{key: value.replace("$PATH", "") for key, value in image_env.items() if key != "PATH"},
        "HOME": str(tmp_path / "home"), "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_CONFIG_HOME": str(tmp_path / "etc"),
        **config_map,
        # The cluster's names, pointed at the session broker; shorter timeouts keep the test quick.
        "Kafka__BootstrapServers": broker.bootstrap, "Kafka__Topic": topic, "Kafka__GroupId": group,
        "BALANCE_TUI_SESSION_TIMEOUT_MS": "2000", "BALANCE_TUI_HEARTBEAT_INTERVAL_MS": "500",
    }
    output = tmp_path / "member.out"
    with output.open("wb") as out:
        member = subprocess.Popen(command, env=environment, stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=url, timeout=5) as client:
            def healthy() -> bool:
                try:
                    return client.get("/api/Balance/health").status_code == 200
                except httpx.HTTPError:
                    return False

            wait_until(healthy, 90, f"the image's command never became healthy: {output.read_text()[-2000:]}")
            assert client.get("/livez").status_code == 200
            assert client.get("/api/Balance/metrics").json()["groupId"] == group
        # What the preStop hook does to PID 1 in the pod.
        member.send_signal(signal.SIGTERM)
        grace = by_kind(deployment_documents, "Deployment")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert member.wait(timeout=grace) == 0
    finally:
        if member.poll() is None:
            member.kill()
            member.wait(timeout=10)
    logs = list((tmp_path / "state" / "balance-tui" / "sessions").glob("*.jsonl"))
    assert len(logs) == 1, f"session log not under XDG_STATE_HOME: {shlex.join(command)}"
    events = read_session_log(logs[0])
    assert events[-1]["event"] == "stopped" and events[-1]["reason"] == "SIGTERM"
