"""The Dockerfile read as a builder reads it: stages, user, port, command and build context."""

from __future__ import annotations

import fnmatch
import re
import tomllib

from balance_tui.cli import build_parser
from tests.deploy_files import DOCKERFILE, ROOT, dockerfile_instructions, env_of, final_stage


def instructions_named(keyword: str, final_only: bool = True) -> list:
    instructions = dockerfile_instructions()
    pool = final_stage(instructions) if final_only else instructions
    return [i for i in pool if i.keyword == keyword]


def test_it_builds_in_one_stage_and_runs_from_another() -> None:
    froms = instructions_named("FROM", final_only=False)
    assert len(froms) == 2 and froms[0].argument.endswith(" AS build")
    copies = instructions_named("COPY")
    assert any(c.argument.startswith("--from=build ") for c in copies)
    (default,) = [i for i in dockerfile_instructions() if i.keyword == "ARG"]
    python = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert re.search(r"python:3\.11", default.argument) and python == ">=3.11"


def test_it_runs_as_a_non_root_user_that_openshift_may_replace() -> None:
    (user,) = instructions_named("USER")
    assert user.argument.isdigit() and int(user.argument) != 0  # numeric: runAsNonRoot can check it
    runs = " ".join(i.argument for i in instructions_named("RUN"))
    assert f"--uid {user.argument} --gid 0" in runs and "chmod -R g=u" in runs  # random UID, group 0


def test_the_default_command_is_the_headless_member_with_the_api_on_8080() -> None:
    (entrypoint,) = instructions_named("ENTRYPOINT")
    (cmd,) = instructions_named("CMD")
    (expose,) = instructions_named("EXPOSE")
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert entrypoint.exec_form() == ["balance-tui"] and "balance-tui" in scripts
    args = build_parser().parse_args(cmd.exec_form())
    assert args.headless and args.http_host == "0.0.0.0" and int(args.http_port) == 8080
    assert expose.argument == "8080"
    (stop,) = instructions_named("STOPSIGNAL")
    assert stop.argument == "SIGTERM"


def test_no_setting_or_secret_is_baked_into_the_image() -> None:
    env: dict[str, str] = {}
    for instruction in dockerfile_instructions():
        if instruction.keyword == "ENV":
            env.update(env_of(instruction))
    assert not [name for name in env if name.startswith(("BALANCE_TUI_", "Kafka__"))]
    assert not [name for name in env if re.search("PASSWORD|SECRET|TOKEN|KEY", name, re.I)]
    assert env["XDG_STATE_HOME"] == "/var/lib/balance-tui" and env["XDG_CONFIG_HOME"] == "/etc"


def ignored(path: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path.split("/")[0], pattern) for pattern in patterns)


def test_the_build_context_has_what_the_copies_need_and_nothing_else() -> None:
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    build_copies = [i for i in dockerfile_instructions() if i.keyword == "COPY" and i.stage == 0]
    sources = [source for copy in build_copies for source in copy.argument.split()[:-1]]
    assert sources == ["pyproject.toml", "README.md", "balance_tui"]
    for source in sources:
        assert (ROOT / source).exists() and not ignored(source, patterns), source
    for heavy in (".venv", ".git", "tests", "deploy"):
        assert ignored(heavy, patterns), heavy
    assert DOCKERFILE.read_text().count("FROM ") == 2
