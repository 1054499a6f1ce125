"""TODO: demo."""

from __future__ import annotations

import argparse

from balance_tui.config import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace, settings: Settings) -> int:
    raise NotImplementedError("demo")
