"""Reading the deployment files the way their tools do: the Dockerfile's instructions, the manifests' documents."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
KUBERNETES = ROOT / "deploy" / "kubernetes"
OPENSHIFT = ROOT / "deploy" / "openshift" / "openshift-deployment.yaml"
#: What the lab's `sed "s/\${NAMESPACE}/ebanking-labs/g"` puts in.
LAB_NAMESPACE = "ebanking-labs"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    argument: str
    stage: int

    def exec_form(self) -> list[str]:
        """ENTRYPOINT/CMD/RUN in JSON (exec) form."""
        value = json.loads(self.argument)
        assert isinstance(value, list), f"{self.keyword} is not in exec form"
        return value


def dockerfile_instructions(path: Path = DOCKERFILE) -> list[Instruction]:
    """Instructions in order, continuation lines joined, comments dropped; `stage` counts FROMs from 0."""
    instructions: list[Instruction] = []
    pending = ""
    stage = -1
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, argument = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        instructions.append(Instruction(keyword, argument.strip(), stage))
    return instructions


def env_of(instruction: Instruction) -> dict[str, str]:
    return dict(item.split("=", 1) for item in shlex.split(instruction.argument))


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    last = max(i.stage for i in instructions)
    return [i for i in instructions if i.stage == last]


def load_documents(path: Path, namespace: str | None = None) -> list[dict[str, Any]]:
    text = path.read_text()
    if namespace is not None:
        text = text.replace("${NAMESPACE}", namespace)
    return [document for document in yaml.safe_load_all(text) if document]


def kubernetes_documents() -> dict[Path, list[dict[str, Any]]]:
    return {path: load_documents(path) for path in sorted(KUBERNETES.rglob("*.yaml"))}


def by_kind(documents: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [d for d in documents if d["kind"] == kind]
    return found
