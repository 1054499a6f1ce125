"""Configuration: every source, their precedence, every bad value, and secret handling.

Settings are observed through the real command line (`cli.main`), with the `down`
command's `run` replaced by a recorder: parsing, sources and validation are real.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from balance_tui import cli, locations
from balance_tui.commands import down
from balance_tui.config import Settings, load_settings, redact_properties

Run = Callable[..., Settings]


@pytest.fixture
def settings_for(monkeypatch: pytest.MonkeyPatch) -> Run:
    """`settings_for(*argv)` -> the Settings a command receives for `balance-tui down ARGV`."""
    seen: list[Settings] = []

    def record(args: object, settings: Settings) -> int:
        seen.append(settings)
        return 0

    monkeypatch.setattr(down, "run", record)

    def run(*argv: str, before: tuple[str, ...] = ()) -> Settings:
        assert cli.main([*before, "down", *argv]) == 0
        return seen[-1]

    return run


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """`env(NAME=value, ...)`: set environment variables for one test."""

    def set_env(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)

    return set_env


def write_toml(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def expect_error(capsys: pytest.CaptureFixture[str], argv: list[str], *fragments: str) -> str:
    """Run the CLI, expect exit code 2 and exactly one stderr line containing every fragment."""
    code = cli.main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


# -- sources and precedence ------------------------------------------------------------------


def test_defaults(settings_for: Run) -> None:
    settings = settings_for()
    assert settings.bootstrap_servers == "localhost:9092"
    assert settings.topic == "banking.transactions"
    assert settings.group == "balance-service"
    assert settings.partitions == 6
    assert settings.strategy == "cooperative-sticky"
    assert (settings.session_timeout_ms, settings.heartbeat_interval_ms) == (10_000, 3_000)
    assert settings.security_protocol == "plaintext"
    assert settings.client_config() == {"bootstrap.servers": "localhost:9092", "security.protocol": "plaintext"}


def test_every_flag_reaches_the_settings(settings_for: Run, tmp_path: Path) -> None:
    settings = settings_for(
        "--bootstrap-servers", "a:1,b:2", "--topic", "t", "--group", "g", "--partitions", "3",
        "--strategy", "range", "--session-timeout-ms", "6000", "--heartbeat-interval-ms", "1000",
        "--work-ms", "0.5", "--session-log", str(tmp_path / "s.jsonl"),
        "--security-protocol", "SASL_SSL", "--sasl-mechanism", "PLAIN", "--sasl-username", "u",
        "--sasl-password", "p", "--ssl-ca-location", "/ca.pem",
        "--ssl-certificate-location", "/cert.pem", "--ssl-key-location", "/key.pem",
    )
    assert settings.bootstrap_servers == "a:1,b:2"
    assert (settings.topic, settings.group, settings.partitions) == ("t", "g", 3)
    assert settings.strategy == "range"
    assert (settings.session_timeout_ms, settings.heartbeat_interval_ms, settings.work_ms) == (6000, 1000, 0.5)
    assert settings.session_log == tmp_path / "s.jsonl"
    assert settings.client_config() == {
        "bootstrap.servers": "a:1,b:2", "security.protocol": "sasl_ssl", "sasl.mechanism": "PLAIN",
        "sasl.username": "u", "sasl.password": "p", "ssl.ca.location": "/ca.pem",
        "ssl.certificate.location": "/cert.pem", "ssl.key.location": "/key.pem",
    }


def test_settings_flags_work_before_the_subcommand_too(settings_for: Run, tmp_path: Path) -> None:
    config = write_toml(tmp_path / "c.toml", 'group = "from-file"\n')
    settings = settings_for(before=("--topic", "early", "--config", str(config)))
    assert (settings.topic, settings.group) == ("early", "from-file")


@pytest.mark.parametrize(("given", "expected"), [
    ("cooperative", "cooperative-sticky"), ("Cooperative_Sticky", "cooperative-sticky"),
    ("round-robin", "roundrobin"), ("RANGE", "range"),
])
def test_strategy_spellings(settings_for: Run, given: str, expected: str) -> None:
    assert settings_for("--strategy", given).strategy == expected


def test_precedence_flag_over_env_over_lab_env_over_file_over_default(
    settings_for: Run, env: Callable[..., None], tmp_path: Path
) -> None:
    config = write_toml(tmp_path / "c.toml", 'topic = "file-topic"\ngroup = "file-group"\n'
                        'bootstrap-servers = "file:1"\npartitions = 4\nstrategy = "range"\n')
    env(BALANCE_TUI_CONFIG=str(config))
    # file over defaults
    settings = settings_for()
    assert (settings.topic, settings.group, settings.bootstrap_servers, settings.partitions) == (
        "file-topic", "file-group", "file:1", 4)
    # the lab's .NET-style names over the file
    env(Kafka__Topic="lab-topic", Kafka__GroupId="lab-group", Kafka__BootstrapServers="lab:2")
    settings = settings_for()
    assert (settings.topic, settings.group, settings.bootstrap_servers) == ("lab-topic", "lab-group", "lab:2")
    assert settings.partitions == 4  # untouched settings still come from the file
    # BALANCE_TUI_* over the lab names
    env(BALANCE_TUI_TOPIC="env-topic", BALANCE_TUI_BOOTSTRAP_SERVERS="env:3")
    settings = settings_for()
    assert (settings.topic, settings.group, settings.bootstrap_servers) == ("env-topic", "lab-group", "env:3")
    # flags over everything
    settings = settings_for("--topic", "flag-topic", "--strategy", "roundrobin")
    assert (settings.topic, settings.bootstrap_servers, settings.strategy) == ("flag-topic", "env:3", "roundrobin")


def test_config_flag_wins_over_balance_tui_config(settings_for: Run, env: Callable[..., None], tmp_path: Path) -> None:
    env(BALANCE_TUI_CONFIG=str(write_toml(tmp_path / "env.toml", 'topic = "from-env-file"\n')))
    flag_file = write_toml(tmp_path / "flag.toml", 'topic = "from-flag-file"\n')
    assert settings_for("--config", str(flag_file)).topic == "from-flag-file"


def test_default_config_file_in_the_user_config_dir(settings_for: Run) -> None:
    path = locations.config_file()
    assert path.is_relative_to(Path(os.environ["XDG_CONFIG_HOME"]))  # the sandbox, never the real one
    write_toml(path, 'group = "from-default-file"\n')
    try:
        assert settings_for().group == "from-default-file"
    finally:
        path.unlink()


def test_empty_lab_variable_is_ignored(settings_for: Run, env: Callable[..., None]) -> None:
    env(Kafka__Topic="")
    assert settings_for().topic == "banking.transactions"


def test_librdkafka_table_from_toml(settings_for: Run, tmp_path: Path) -> None:
    config = write_toml(tmp_path / "c.toml", '[librdkafka]\n"linger.ms" = 5\n"enable.idempotence" = true\n'
                        '"client.id" = "x"\n')
    settings = settings_for("--config", str(config))
    assert settings.librdkafka == {"linger.ms": "5", "enable.idempotence": "true", "client.id": "x"}
    assert settings.client_config()["linger.ms"] == "5"


# -- bad values: one line naming the setting, exit code 2 ------------------------------------


@pytest.mark.parametrize(("argv", "fragments"), [
    (["--strategy", "sticky-ish"], ["strategy", "range", "cooperative-sticky"]),
    (["--bootstrap-servers", "localhost"], ["bootstrap_servers", "host:port"]),
    (["--bootstrap-servers", "localhost:99999"], ["bootstrap_servers"]),
    (["--bootstrap-servers", "localhost:port"], ["bootstrap_servers"]),
    (["--bootstrap-servers", " , "], ["bootstrap_servers"]),
    (["--partitions", "six"], ["partitions", "integer"]),
    (["--partitions", "0"], ["partitions"]),
    (["--session-timeout-ms", "10s"], ["session_timeout_ms"]),
    (["--session-timeout-ms", "500"], ["session_timeout_ms"]),
    (["--work-ms", "-1"], ["work_ms"]),
    (["--work-ms", "fast"], ["work_ms"]),
    (["--heartbeat-interval-ms", "10000"], ["heartbeat_interval_ms", "session_timeout_ms"]),
    (["--heartbeat-interval-ms", "3000", "--session-timeout-ms", "2000"], ["heartbeat_interval_ms"]),
    (["--security-protocol", "tls"], ["security_protocol"]),
    (["--topic", ""], ["topic"]),
])
def test_bad_flag_values(capsys: pytest.CaptureFixture[str], argv: list[str], fragments: list[str]) -> None:
    expect_error(capsys, ["down", *argv], *fragments)


@pytest.mark.parametrize(("name", "value", "fragment"), [
    ("BALANCE_TUI_STRATEGY", "fair", "strategy"),
    ("BALANCE_TUI_PARTITIONS", "many", "partitions"),
    ("BALANCE_TUI_HEARTBEAT_INTERVAL_MS", "20000", "heartbeat_interval_ms"),
    ("BALANCE_TUI_LIBRDKAFKA", "not json", "librdkafka"),
    ("Kafka__BootstrapServers", "kafka", "bootstrap_servers"),
])
def test_bad_environment_values(capsys: pytest.CaptureFixture[str], env: Callable[..., None],
                                name: str, value: str, fragment: str) -> None:
    env(**{name: value})
    expect_error(capsys, ["down"], fragment)


# -- numbers and switches: exactly what the configuration table documents ---------------------


@pytest.mark.parametrize(("text", "fragments"), [
    ("partitions = true\n", ["partitions", "integer from 1 to 1000", "got True"]),
    ("partitions = false\n", ["partitions", "integer", "got False"]),
    ("session_timeout_ms = true\n", ["session_timeout_ms", "integer from 1000 to 3600000", "got True"]),
    ("heartbeat_interval_ms = false\n", ["heartbeat_interval_ms", "integer"]),
    ("commit_interval_ms = true\n", ["commit_interval_ms", "integer"]),
    ("partitions = 6.0\n", ["partitions", "integer", "got 6.0"]),
    ("partitions = 6.5\n", ["partitions", "integer"]),
    ('partitions = "1_000"\n', ["partitions", "plain digits"]),
    ("work_ms = true\n", ["work_ms", "number from 0 to 10000", "got True"]),
    ("refresh_hz = false\n", ["refresh_hz", "number above 0, up to 60"]),
    ("work_ms = inf\n", ["work_ms", "number"]),
    ("work_ms = nan\n", ["work_ms", "number"]),
    ('work_ms = "1e1"\n', ["work_ms", "number"]),
    ("changelog = 1\n", ["changelog", "on or off"]),
    ('changelog = "yes"\n', ["changelog", "on or off"]),
])
def test_loose_types_in_the_file_are_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str,
                                             fragments: list[str]) -> None:
    config = write_toml(tmp_path / "c.toml", text)
    line = expect_error(capsys, ["down", "--config", str(config)], *fragments)
    assert "greater than" not in line  # a wrong type is not a range error


@pytest.mark.parametrize(("name", "value", "fragment"), [
    ("BALANCE_TUI_PARTITIONS", "1_000", "partitions"),
    ("BALANCE_TUI_PARTITIONS", " 7 ", "partitions"),
    ("BALANCE_TUI_PARTITIONS", "１２", "partitions"),  # fullwidth digits
    ("BALANCE_TUI_PARTITIONS", "+7", "partitions"),
    ("BALANCE_TUI_PARTITIONS", "6.0", "partitions"),
    ("BALANCE_TUI_PARTITIONS", "true", "partitions"),
    ("BALANCE_TUI_SESSION_TIMEOUT_MS", "1e4", "session_timeout_ms"),
    ("BALANCE_TUI_WORK_MS", "1_0", "work_ms"),
    ("BALANCE_TUI_WORK_MS", "1e1", "work_ms"),
    ("BALANCE_TUI_WORK_MS", " 2 ", "work_ms"),
    ("BALANCE_TUI_WORK_MS", "２", "work_ms"),
    ("BALANCE_TUI_WORK_MS", "nan", "work_ms"),
    ("BALANCE_TUI_REFRESH_HZ", "inf", "refresh_hz"),
    ("BALANCE_TUI_CHANGELOG", "yes", "changelog"),
    ("BALANCE_TUI_CHANGELOG", "1", "changelog"),
    ("BALANCE_TUI_CHANGELOG", " on", "changelog"),
])
def test_loose_types_in_the_environment_are_refused(capsys: pytest.CaptureFixture[str], env: Callable[..., None],
                                                    name: str, value: str, fragment: str) -> None:
    env(**{name: value})
    expect_error(capsys, ["down"], fragment, repr(value))


@pytest.mark.parametrize(("argv", "fragments"), [
    (["--partitions", "1_000"], ["partitions", "integer from 1 to 1000 in plain digits, like 6"]),
    (["--session-timeout-ms", " 7 "], ["session_timeout_ms", "like 10000"]),
    (["--commit-interval-ms", "1e3"], ["commit_interval_ms"]),
    (["--work-ms", "1e1"], ["work_ms", "like 2"]),
    (["--changelog", "yes"], ["changelog", "on or off (or true/false)"]),
    (["--partitions", "0"], ["partitions", "integer from 1 to 1000"]),  # the range, in the same words
])
def test_loose_flag_values_are_refused(capsys: pytest.CaptureFixture[str], argv: list[str],
                                       fragments: list[str]) -> None:
    expect_error(capsys, ["down", *argv], *fragments)


@pytest.mark.parametrize(("given", "expected"), [
    ("on", True), ("off", False), ("true", True), ("false", False), ("ON", True), ("False", False),
])
def test_changelog_switch_words(settings_for: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                given: str, expected: bool) -> None:
    assert settings_for("--changelog", given).changelog is expected
    config = write_toml(tmp_path / "c.toml", f'changelog = "{given}"\n')
    assert settings_for("--config", str(config)).changelog is expected
    monkeypatch.setenv("BALANCE_TUI_CHANGELOG", given)
    assert settings_for().changelog is expected


def test_documented_numbers_are_accepted_from_every_source(settings_for: Run, env: Callable[..., None],
                                                           tmp_path: Path) -> None:
    config = write_toml(tmp_path / "c.toml", "partitions = 12\nwork_ms = 1\nrefresh_hz = 2.5\nchangelog = false\n"
                        "session_timeout_ms = 45000\n")
    settings = settings_for("--config", str(config))
    assert (settings.partitions, settings.work_ms, settings.refresh_hz, settings.changelog) == (12, 1.0, 2.5, False)
    assert settings.session_timeout_ms == 45_000
    env(BALANCE_TUI_WORK_MS="0.5", BALANCE_TUI_PARTITIONS="007", BALANCE_TUI_REFRESH_HZ=".5")
    settings = settings_for("--config", str(config))
    assert (settings.work_ms, settings.partitions, settings.refresh_hz) == (0.5, 7, 0.5)
    assert settings_for("--work-ms", "3.", "--commit-interval-ms", "250").work_ms == 3.0


def test_missing_config_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    expect_error(capsys, ["down", "--config", str(tmp_path / "nope.toml")], "nope.toml", "does not exist")


def test_missing_config_file_from_env(capsys: pytest.CaptureFixture[str], env: Callable[..., None],
                                      tmp_path: Path) -> None:
    env(BALANCE_TUI_CONFIG=str(tmp_path / "gone.toml"))
    expect_error(capsys, ["down"], "gone.toml", "does not exist")


def test_bad_toml(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = write_toml(tmp_path / "bad.toml", "topic = \n")
    expect_error(capsys, ["down", "--config", str(config)], "bad.toml")


@pytest.mark.parametrize(("text", "fragments"), [
    ('partitions = "six"\n', ["partitions"]),
    ('strategy = "fair"\n', ["strategy"]),
    ('colour = "blue"\n', ["unknown setting", "colour"]),
    ("[librdkafka]\n\"linger.ms\" = [1, 2]\n", ["librdkafka"]),
])
def test_bad_values_in_the_file(capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str,
                                fragments: list[str]) -> None:
    config = write_toml(tmp_path / "c.toml", text)
    expect_error(capsys, ["down", "--config", str(config)], *fragments)


@pytest.mark.parametrize(("argv", "toml", "fragments"), [
    (["--security-protocol", "sasl_plaintext", "--sasl-mechanism", "BOGUS"], "", ["librdkafka", "BOGUS"]),
    (["--security-protocol", "ssl", "--ssl-ca-location", "/nonexistent/ca.pem"], "", ["librdkafka", "ssl.ca.location"]),
    ([], '[librdkafka]\n"no.such.property" = "1"\n', ["librdkafka", "no.such.property"]),
])
def test_settings_librdkafka_refuses_are_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                  argv: list[str], toml: str, fragments: list[str]) -> None:
    config = write_toml(tmp_path / "c.toml", toml)
    # `produce` talks to Kafka, so its settings are checked before it starts (`down` does not).
    line = expect_error(capsys, ["produce", "--config", str(config), "--sasl-password", "hunter2-secret", *argv],
                        *fragments)
    assert "hunter2-secret" not in line


def test_down_stops_processes_without_checking_the_kafka_settings(capsys: pytest.CaptureFixture[str],
                                                                   tmp_path: Path) -> None:
    code = cli.main(["down", "--port", "1", "--security-protocol", "ssl", "--ssl-ca-location", "/nonexistent"])
    assert code == 0, capsys.readouterr().err


def test_abbreviated_flags_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    # Otherwise `--sasl-pass SECRET` would be the password under a name nothing redacts.
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["down", "--sasl-pass", "hunter2"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--sasl-pass" in err


def test_report_reads_logs_without_checking_the_kafka_settings(capsys: pytest.CaptureFixture[str]) -> None:
    logs = Path(__file__).parent.parent / "fixtures" / "sessions" / "range"
    code = cli.main(["report", "--security-protocol", "ssl", "--ssl-ca-location", "/nonexistent", str(logs)])
    assert code == 0, capsys.readouterr().err
    assert "sequenceDiagram" in capsys.readouterr().out


def test_non_utf8_config_file_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "latin1.toml"
    config.write_bytes(b'topic = "caf\xe9"\n')
    expect_error(capsys, ["down", "--config", str(config)], "latin1.toml")


def test_bad_value_subprocess_one_line_no_traceback(tmp_path: Path) -> None:
    """The installed console script reports a bad setting the same way."""
    script = Path(sys.executable).parent / "balance-tui"
    result = subprocess.run([str(script), "down", "--strategy", "fair"], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "strategy" in lines[0], result.stderr


# -- secrets ------------------------------------------------------------------------------------


def test_secrets_are_redacted_but_reach_the_client(settings_for: Run, env: Callable[..., None],
                                                   tmp_path: Path) -> None:
    config = write_toml(tmp_path / "c.toml", 'ssl_key_password = "key-pass"\n[librdkafka]\n'
                        '"sasl.oauthbearer.client.secret" = "oauth-secret"\n"ssl.keystore.password" = "ks"\n'
                        '"linger.ms" = "5"\n')
    env(BALANCE_TUI_SASL_PASSWORD="sasl-pass")
    settings = settings_for("--config", str(config))

    client = settings.client_config()
    assert client["sasl.password"] == "sasl-pass"
    assert client["ssl.key.password"] == "key-pass"
    assert client["sasl.oauthbearer.client.secret"] == "oauth-secret"
    assert client["ssl.keystore.password"] == "ks"

    redacted = settings.redacted()
    assert redacted["sasl_password"] == "***" and redacted["ssl_key_password"] == "***"
    assert redacted["librdkafka"] == {"sasl.oauthbearer.client.secret": "***", "ssl.keystore.password": "***",
                                      "linger.ms": "5"}
    text = repr(redacted) + repr(settings) + str(settings)
    for secret in ("sasl-pass", "key-pass", "oauth-secret"):
        assert secret not in text


def test_redacted_leaves_unset_secrets_as_none() -> None:
    redacted = load_settings({}).redacted()
    assert redacted["sasl_password"] is None and redacted["ssl_key_password"] is None


@pytest.mark.parametrize("key", ["sasl.password", "ssl.key.password", "sasl.oauthbearer.client.secret",
                                 "ssl.keystore.password", "ssl.key.pem", "CREDENTIALS.FILE"])
def test_secret_looking_properties(key: str) -> None:
    assert redact_properties({key: "value"}) == {key: "***"}


def test_ordinary_properties_are_kept() -> None:
    properties = {"linger.ms": "5", "client.id": "x", "ssl.ca.location": "/ca.pem"}
    assert redact_properties(properties) == properties


def test_bad_secret_value_is_not_echoed(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = write_toml(tmp_path / "c.toml", 'sasl_password = 12345678\n')
    line = expect_error(capsys, ["down", "--config", str(config)], "sasl_password")
    assert "12345678" not in line


# -- the lag alert rule and the evaluation window ----------------------------------------------------


def test_lag_settings_defaults_and_every_source(settings_for: Run, env: Callable[..., None], tmp_path: Path) -> None:
    settings = settings_for()
    assert (settings.lag_alert_threshold, settings.lag_alert_for, settings.lag_window) == ("1000", 300.0, 60.0)
    assert str(settings.lag_threshold) == "1,000 messages"
    settings = settings_for("--lag-alert-threshold", "30s", "--lag-alert-for", "1h30m", "--lag-window", "2m")
    assert (settings.lag_alert_threshold, settings.lag_alert_for, settings.lag_window) == ("30s", 5400.0, 120.0)
    assert settings.lag_threshold is not None and settings.lag_threshold.seconds == 30.0
    assert settings_for("--lag-alert-threshold", "OFF").lag_threshold is None
    config = write_toml(tmp_path / "c.toml", "lag_alert_threshold = 10_000\nlag_alert_for = 90\nlag_window = 30\n")
    settings = settings_for("--config", str(config))
    assert (settings.lag_alert_threshold, settings.lag_alert_for, settings.lag_window) == ("10000", 90.0, 30.0)
    env(BALANCE_TUI_LAG_ALERT_THRESHOLD="2.5s", BALANCE_TUI_LAG_ALERT_FOR="5m")
    settings = settings_for()
    assert (settings.lag_alert_threshold, settings.lag_alert_for) == ("2.5s", 300.0)
    assert settings.redacted()["lag_alert_threshold"] == "2.5s"


@pytest.mark.parametrize(("argv", "fragments"), [
    (["--lag-alert-threshold", "many"], ["lag_alert_threshold", '"1000"', '"30s"', "off", "got 'many'"]),
    (["--lag-alert-threshold", "-5"], ["lag_alert_threshold"]),
    (["--lag-alert-for", "300"], ["lag_alert_for", "add a unit", "got '300'"]),
    (["--lag-alert-for", "5 minutes"], ["lag_alert_for", '"5m"']),
    (["--lag-window", "0s"], ["lag_window", "from 1s to 10m"]),
    (["--lag-window", "11m"], ["lag_window", "from 1s to 10m"]),
])
def test_bad_lag_settings_are_one_line(capsys: pytest.CaptureFixture[str], argv: list[str],
                                       fragments: list[str]) -> None:
    expect_error(capsys, ["down", *argv], *fragments)


def test_a_boolean_lag_threshold_in_the_file_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = write_toml(tmp_path / "c.toml", "lag_alert_threshold = true\n")
    expect_error(capsys, ["down", "--config", str(config)], "lag_alert_threshold", "got True")
