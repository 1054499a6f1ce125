"""One configuration for every command, on pydantic-settings.

Sources, highest first: command-line flags (passed in as overrides), environment
variables `BALANCE_TUI_<NAME>`, the lab's .NET-style variables
(`Kafka__BootstrapServers`, `Kafka__GroupId`, `Kafka__Topic`), an optional TOML
file, then the defaults below.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from balance_tui import locations
from balance_tui.core.lag import (
    DEFAULT_EVALUATION_WINDOW_SECONDS,
    DEFAULT_RETENTION_SECONDS,
    LagThreshold,
    parse_duration,
    parse_lag_threshold,
)
from balance_tui.errors import ConfigError

Strategy = Literal["range", "roundrobin", "cooperative-sticky", "consumer"]
#: The classic protocol's client-side assignors, then KIP-848's consumer protocol (server-side assignors).
STRATEGIES: tuple[Strategy, ...] = ("range", "roundrobin", "cooperative-sticky", "consumer")
#: The strategy that means "the new consumer group protocol" (KIP-848, `group.protocol=consumer`).
CONSUMER_PROTOCOL: Strategy = "consumer"
#: KIP-848 assignors that run on the broker (`group.remote.assignor`).
REMOTE_ASSIGNORS = ("uniform", "range")

BrokerEngine = Literal["auto", "kafka", "tansu"]

SecurityProtocol = Literal["plaintext", "ssl", "sasl_plaintext", "sasl_ssl"]

#: librdkafka property names whose values must never be shown, logged or exported.
SECRET_PROPERTY_MARKERS = ("password", "secret", "key.pem", "keystore", "token", "credentials",
                           "oauthbearer.config")

#: Settings that hold secrets (SecretStr): masked in `redacted()`, in recorded command lines, everywhere.
SECRET_SETTINGS = ("sasl_password", "ssl_key_password")


def is_secret_property(name: str) -> bool:
    """True for a librdkafka property (or setting path) whose value must never be shown."""
    lowered = name.lower()
    return any(marker in lowered for marker in SECRET_PROPERTY_MARKERS)


_config_file: ContextVar[Path | None] = ContextVar("balance_tui_config_file", default=None)

#: Settings that are whole numbers, and settings that are decimal numbers (README, Configuration).
INTEGER_SETTINGS = ("partitions", "session_timeout_ms", "heartbeat_interval_ms", "commit_interval_ms",
                    "flush_interval_ms")
NUMBER_SETTINGS = ("work_ms", "refresh_hz")
#: What a number looks like as text (a flag, a variable, a TOML string): ASCII digits, an optional
#: minus and, for decimals, one point. No `_`, spaces, exponents, `inf`, or digits of other scripts.
_PLAIN_INTEGER = re.compile(r"-?[0-9]+")
_PLAIN_NUMBER = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
#: The words `changelog` accepts, in any case; TOML may also give a boolean.
SWITCH_WORDS = {"on": True, "off": False, "true": True, "false": False}

#: The lab's alert rule: "alert if consumer lag stays above a threshold for more than 5 minutes".
DEFAULT_LAG_ALERT_FOR_SECONDS = 300.0

#: The lab's ASP.NET configuration names, mapped onto our fields.
LAB_ENV_NAMES = {
    "Kafka__BootstrapServers": "bootstrap_servers",
    "Kafka__GroupId": "group",
    "Kafka__Topic": "topic",
}


class Settings(BaseSettings):
    """Everything a balance-tui command needs to talk to Kafka and behave."""

    model_config = SettingsConfigDict(
        env_prefix="BALANCE_TUI_",
        extra="forbid",
        validate_default=True,
    )

    bootstrap_servers: str = "localhost:9092"
    """Kafka bootstrap servers, `host:port[,host:port...]`."""

    topic: str = Field(default="banking.transactions", min_length=1)
    """The transactions topic the balance service consumes."""

    group: str = Field(default="balance-service", min_length=1)
    """The consumer group every balance-tui terminal joins."""

    partitions: int = Field(default=6, ge=1, le=1000)
    """Partition count used when the topic has to be created."""

    strategy: Strategy = "cooperative-sticky"
    """Partition assignment strategy: range, roundrobin or cooperative-sticky (the classic protocol), or
    consumer: KIP-848's consumer group protocol, where the broker assigns (see `remote_assignor`)."""

    remote_assignor: Literal["uniform", "range"] | None = None
    """With strategy consumer: the broker-side assignor (`group.remote.assignor`); default the broker's (uniform)."""

    group_instance_id: str | None = Field(default=None, min_length=1, max_length=249)
    """Static membership (KIP-345, `group.instance.id`): a member restarted within its session timeout
    gets its partitions back without a rebalance. Unique per member of the group."""

    session_timeout_ms: int = Field(default=10_000, ge=1_000, le=3_600_000)
    """Consumer session timeout; a silent member is evicted after this long (the lab uses 10 s)."""

    heartbeat_interval_ms: int = Field(default=3_000, ge=100, le=3_600_000)
    """How often the consumer heartbeats the coordinator; must be below the session timeout."""

    work_ms: float = Field(default=2.0, ge=0, le=10_000)
    """Simulated processing time per transaction (2 ms: about 500 tx/s per worker, the lab's max)."""

    changelog: bool = True
    """Keep each partition's balances in the changelog topic and restore moved partitions from it."""

    changelog_topic: str | None = None
    """Changelog topic; default `<group>.balances-changelog`."""

    commit_interval_ms: int = Field(default=1_000, ge=100, le=3_600_000)
    """How often the source offsets are committed: in the changelog's transaction when the changelog is on."""

    flush_interval_ms: int = Field(default=1_000, ge=50, le=60_000)
    """How often the changelog is written: one record per customer changed since, in one transaction per partition."""

    lag_alert_threshold: str | None = "1000"
    """The lab's alert rule: alert when this member's lag stays above this many messages (`1000`), or this
    many seconds of lag (`30s`), for longer than `lag_alert_for`; `off` for no alert."""

    lag_alert_for: float = DEFAULT_LAG_ALERT_FOR_SECONDS
    """How long the lag must stay above `lag_alert_threshold` before the alert is raised: `5m`, `300s`,
    `1h30m` (a TOML number is seconds)."""

    lag_window: float = DEFAULT_EVALUATION_WINDOW_SECONDS
    """The window of Burrow-style lag evaluation (OK, WARN, STALL, STOP, REWIND): `60s`, `2m`; from 1 s
    to the 10 minutes of lag history kept."""

    session_log: Path | None = None
    """JSON Lines session log path; default: a new file under the user's state directory."""

    refresh_hz: float = Field(default=8.0, gt=0, le=60)
    """Dashboard refresh rate (renders per second at most)."""

    security_protocol: SecurityProtocol = "plaintext"
    """librdkafka `security.protocol` for real clusters."""

    sasl_mechanism: str | None = None
    """librdkafka `sasl.mechanism` (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, ...)."""

    sasl_username: str | None = None
    """librdkafka `sasl.username`."""

    sasl_password: SecretStr | None = None
    """librdkafka `sasl.password`; never logged, exported or shown."""

    ssl_ca_location: str | None = None
    """librdkafka `ssl.ca.location`: CA bundle used to verify the brokers."""

    ssl_certificate_location: str | None = None
    """librdkafka `ssl.certificate.location`: client certificate for mutual TLS."""

    ssl_key_location: str | None = None
    """librdkafka `ssl.key.location`: client private key for mutual TLS."""

    ssl_key_password: SecretStr | None = None
    """librdkafka `ssl.key.password`; never logged, exported or shown."""

    librdkafka: dict[str, str] = Field(default_factory=dict, repr=False)  # may hold secrets
    """Extra librdkafka properties (TOML table `[librdkafka]`), applied to every client."""

    http_port: int | None = Field(default=None, ge=0, le=65535)
    """Serve the HTTP API (the lab's /api/Balance/..., /metrics, /swagger) on this port; off when unset,
    0 picks a free port."""

    http_host: str = Field(default="127.0.0.1", min_length=1)
    """Address the HTTP API listens on (0.0.0.0 in containers)."""

    broker_engine: BrokerEngine = "auto"
    """The broker `balance-tui broker` and `demo` start: kafka (Apache Kafka in KRaft mode, needs Java 17),
    tansu (the embedded Rust broker, no Java needed), or auto: Apache Kafka where it can run, else Tansu."""

    kafka_version: str = Field(default="4.4.0", pattern=r"^[0-9]+\.[0-9]+\.[0-9]+$")
    """The Apache Kafka release whose official jars are resolved (once, with Maven) when no
    `kafka_home` is given."""

    kafka_home: Path | None = None
    """An installed Apache Kafka distribution (with bin/ and libs/, like the lab's /opt/kafka); also read
    from KAFKA_HOME. Its programs run the broker and `balance-tui kafka TOOL`."""

    @field_validator("strategy", mode="before")
    @classmethod
    def _normalise_strategy(cls, value: Any) -> Any:
        if isinstance(value, str):
            lowered = value.strip().lower().replace("_", "-")
            return {"cooperative": "cooperative-sticky", "sticky": "cooperative-sticky",
                    "round-robin": "roundrobin", "kip-848": "consumer", "kip848": "consumer"}.get(lowered, lowered)
        return value

    @field_validator(*INTEGER_SETTINGS, mode="before")
    @classmethod
    def _plain_integer(cls, value: Any, info: ValidationInfo) -> int:
        return plain_integer(value, cls.model_fields[info.field_name or ""])

    @field_validator(*NUMBER_SETTINGS, mode="before")
    @classmethod
    def _plain_number(cls, value: Any, info: ValidationInfo) -> float:
        return plain_number(value, cls.model_fields[info.field_name or ""])

    @field_validator("changelog", mode="before")
    @classmethod
    def _switch(cls, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in SWITCH_WORDS:
            return SWITCH_WORDS[value.lower()]
        raise ValueError("must be on or off (or true/false)")

    @field_validator("lag_alert_threshold", mode="before")
    @classmethod
    def _lag_threshold(cls, value: Any) -> str | None:
        return lag_threshold_setting(value)

    @field_validator("lag_alert_for", "lag_window", mode="before")
    @classmethod
    def _duration(cls, value: Any, info: ValidationInfo) -> float:
        return duration_setting(value, info.field_name or "")

    @field_validator("librdkafka", mode="before")
    @classmethod
    def _stringify_properties(cls, value: Any) -> Any:
        # TOML gives `"linger.ms" = 5` and `"enable.idempotence" = true`; librdkafka wants strings.
        if isinstance(value, dict):
            return {key: (str(item).lower() if isinstance(item, bool) else str(item))
                    if isinstance(item, (bool, int, float)) else item for key, item in value.items()}
        return value

    @field_validator("security_protocol", mode="before")
    @classmethod
    def _lower_protocol(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("bootstrap_servers")
    @classmethod
    def _check_bootstrap(cls, value: str) -> str:
        servers = [part.strip() for part in value.split(",") if part.strip()]
        if not servers:
            raise ValueError("must name at least one host:port")
        for server in servers:
            host, sep, port = server.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{server!r} is not host:port")
        return ",".join(servers)

    @model_validator(mode="after")
    def _check_heartbeat(self) -> Settings:
        if self.heartbeat_interval_ms >= self.session_timeout_ms:
            raise ValueError(
                f"heartbeat_interval_ms ({self.heartbeat_interval_ms}) must be lower than "
                f"session_timeout_ms ({self.session_timeout_ms})"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, LabEnvSource(settings_cls), TomlFileSource(settings_cls))

    # -- what the Kafka edge and the session log need -------------------------------------

    @property
    def lag_threshold(self) -> LagThreshold | None:
        """`lag_alert_threshold` as the alert rule takes it (None: no alert)."""
        return parse_lag_threshold(self.lag_alert_threshold) if self.lag_alert_threshold is not None else None

    @property
    def changelog_topic_name(self) -> str:
        return self.changelog_topic or f"{self.group}.balances-changelog"

    def client_config(self) -> dict[str, str]:
        """librdkafka properties shared by every client: bootstrap, security and extras."""
        config: dict[str, str] = {"bootstrap.servers": self.bootstrap_servers}
        config["security.protocol"] = self.security_protocol
        optional = {
            "sasl.mechanism": self.sasl_mechanism,
            "sasl.username": self.sasl_username,
            "sasl.password": self.sasl_password.get_secret_value() if self.sasl_password else None,
            "ssl.ca.location": self.ssl_ca_location,
            "ssl.certificate.location": self.ssl_certificate_location,
            "ssl.key.location": self.ssl_key_location,
            "ssl.key.password": self.ssl_key_password.get_secret_value() if self.ssl_key_password else None,
        }
        config.update({key: value for key, value in optional.items() if value is not None})
        config.update(self.librdkafka)
        return config

    def redacted(self) -> dict[str, Any]:
        """The effective configuration with every secret replaced, safe for logs and exports."""
        data = self.model_dump(mode="json")
        for name in SECRET_SETTINGS:
            if data.get(name) is not None:
                data[name] = "***"
        data["librdkafka"] = redact_properties(self.librdkafka)
        return data


def plain_integer(value: Any, field: FieldInfo) -> int:
    """An integer setting as written: lax pydantic would take `true` as 1, `6.0` as 6 and "1_000" as 1000."""
    number: int | None = None
    if isinstance(value, str) and _PLAIN_INTEGER.fullmatch(value):
        number = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    if number is None or not _within(number, field):
        raise ValueError(f"must be an integer {_bounds_text(field)} in plain digits, like {field.default}")
    return number


def plain_number(value: Any, field: FieldInfo) -> float:
    """A number setting as written: plain digits with an optional decimal point, within the field's bounds."""
    written = isinstance(value, str) and _PLAIN_NUMBER.fullmatch(value) is not None
    given = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    number = float(value) if written or given else None
    if number is None or not _within(number, field):
        raise ValueError(f"must be a number {_bounds_text(field)} in plain digits with an optional "
                         f"decimal point, like {field.default:g}")
    return number


def lag_threshold_setting(value: Any) -> str | None:
    """`lag_alert_threshold` in one spelling, whatever the source (what the session log and the header show)."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "off"):
        return None
    try:
        threshold = parse_lag_threshold(value)
    except ValueError:
        raise ValueError('must be a whole number of messages ("1000"), seconds of lag ("30s"), or off') from None
    return str(threshold.messages) if threshold.messages is not None else f"{threshold.seconds:g}s"


def duration_setting(value: Any, name: str) -> float:
    """`lag_alert_for` or `lag_window` in seconds."""
    try:
        seconds = parse_duration(value, name)
    except ValueError as error:
        hint = " (add a unit)" if "add a unit" in str(error) else ""
        raise ValueError(f'must be a duration like "300s", "5m" or "1h"{hint}') from None
    if name == "lag_window" and not 1 <= seconds <= DEFAULT_RETENTION_SECONDS:
        raise ValueError("must be a duration from 1s to 10m (the lag history kept), like 60s")
    return seconds


def _bound(field: FieldInfo, name: str) -> float | None:
    """The field's `ge`, `gt` or `le` constraint (pydantic keeps them as metadata), if it has one."""
    return next((getattr(item, name) for item in field.metadata if hasattr(item, name)), None)


def _within(number: float, field: FieldInfo) -> bool:
    """True when `number` meets the field's own bounds."""
    low, above, high = _bound(field, "ge"), _bound(field, "gt"), _bound(field, "le")
    return ((low is None or number >= low) and (above is None or number > above)
            and (high is None or number <= high))


def _bounds_text(field: FieldInfo) -> str:
    """`from 1 to 1000`, or `above 0, up to 60`: the field's bounds in words."""
    low, above, high = _bound(field, "ge"), _bound(field, "gt"), _bound(field, "le")
    if low is not None:
        return f"from {low} to {high}" if high is not None else f"of at least {low}"
    if above is not None:
        return f"above {above}, up to {high}" if high is not None else f"above {above}"
    return f"up to {high}" if high is not None else ""


def redact_properties(properties: dict[str, str]) -> dict[str, str]:
    """Copy of librdkafka properties with the values of secret-looking keys replaced."""
    return {
        key: "***" if is_secret_property(key) else value
        for key, value in properties.items()
    }


class LabEnvSource(PydanticBaseSettingsSource):
    """Reads the lab's `Kafka__BootstrapServers`, `Kafka__GroupId` and `Kafka__Topic`."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return {field: os.environ[name] for name, field in LAB_ENV_NAMES.items() if os.environ.get(name)}


class TomlFileSource(PydanticBaseSettingsSource):
    """Reads the TOML file chosen by `--config`, `BALANCE_TUI_CONFIG`, or the XDG default."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        explicit = _config_file.get() or (Path(os.environ["BALANCE_TUI_CONFIG"])
                                          if os.environ.get("BALANCE_TUI_CONFIG") else None)
        path = explicit or locations.config_file()
        if not path.exists():
            if explicit:
                raise ConfigError(f"config file {path} does not exist")
            return {}
        try:
            with path.open("rb") as handle:
                data = tomllib.load(handle)
        except (OSError, ValueError) as error:  # ValueError: TOMLDecodeError, or bytes that are not UTF-8
            raise ConfigError(f"config file {path}: {error}") from None
        # Accept `bootstrap-servers` as well as `bootstrap_servers`, like the flags.
        return {key.replace("-", "_"): value for key, value in data.items()}


def load_settings(overrides: dict[str, Any] | None = None, config_file: Path | None = None) -> Settings:
    """Build the settings from every source; raise ConfigError with one readable line."""
    token = _config_file.set(config_file)
    try:
        clean = {key: value for key, value in (overrides or {}).items() if value is not None}
        return Settings(**clean)
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error)) from None
    except SettingsError as error:  # e.g. BALANCE_TUI_LIBRDKAFKA that is not JSON
        raise ConfigError(str(error)) from None
    finally:
        _config_file.reset(token)


def describe_validation_error(error: ValidationError) -> str:
    """One line naming the first bad setting and what is allowed."""
    first = error.errors()[0]
    location = ".".join(str(part) for part in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    if not location:  # a check across settings (heartbeat vs session timeout) names them itself
        return f"invalid settings: {message}"
    if first["type"] == "extra_forbidden":
        return f"unknown setting {location!r}"
    value = first.get("input")
    shown = "" if isinstance(value, dict) or is_secret_property(location) else f" (got {value!r})"
    return f"invalid setting {location}: {message}{shown}"
