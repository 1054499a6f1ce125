"""The code's shape, checked: the layers import only what they may, and no class outgrows a reader.

`core/` is pure (no Kafka, no Textual, no HTTP), the Textual layer never reaches into the Kafka
edge (messages and `WorkerControl` are its only links to the worker), and no class in
`balance_tui/` is longer than `MAX_CLASS_LINES` (docs/architecture.md).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "balance_tui"
#: About four screenfuls of a laptop's editor: what one can still read as a whole.
MAX_CLASS_LINES = 250

#: Layer -> import prefixes it must not use.
FORBIDDEN = {
    "core": ("confluent_kafka", "textual", "rich", "fastapi", "uvicorn", "balance_tui.kafka", "balance_tui.ui",
             "balance_tui.api", "balance_tui.lab", "balance_tui.commands", "balance_tui.cli"),
    "ui": ("confluent_kafka", "balance_tui.kafka", "balance_tui.api", "balance_tui.lab", "balance_tui.commands"),
    "kafka": ("textual", "balance_tui.ui", "balance_tui.api", "balance_tui.lab", "balance_tui.commands"),
    "lab": ("textual", "balance_tui.ui", "balance_tui.cli"),
    "api": ("textual", "balance_tui.ui", "balance_tui.lab", "balance_tui.commands"),
    "commands": ("balance_tui.cli",),
}


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def imported(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_each_layer_imports_only_what_it_may(layer: str) -> None:
    wrong = []
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        for name in imported(ast.parse(path.read_text())):
            if any(name == banned or name.startswith(f"{banned}.") for banned in FORBIDDEN[layer]):
                wrong.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert not wrong, wrong


def test_no_class_is_longer_than_a_reader_can_hold() -> None:
    too_long = []
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and node.end_lineno is not None:
                length = node.end_lineno - node.lineno + 1
                if length > MAX_CLASS_LINES:
                    too_long.append(f"{path.relative_to(PACKAGE)}: {node.name} is {length} lines")
    assert not too_long, too_long


def test_the_checks_see_the_package() -> None:
    assert len(modules()) > 50  # a wrong PACKAGE path would make every check above pass vacuously
