"""Provides Apache Kafka's programs: from an installed distribution, or from jars resolved once with Maven.

Where Kafka comes from, in this order:

1. `--kafka-home DIR` or `KAFKA_HOME`: an Apache Kafka distribution (`bin/`, `libs/`), as
   the lab's `/opt/kafka`. Its `libs/` run the broker, its `bin/kafka-*.sh` scripts the tools.
2. The official jars of the pinned version (setting `kafka_version`), resolved once with
   Maven from the POM shipped beside this module into the user cache directory, then
   reused offline. balance-tui runs their main classes itself (the distribution's shell
   scripts are thin wrappers around them).

Both need Java 17 or newer. Every way this can fail is one line saying what is missing
and how to get it, or to use `--engine tansu`.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.resources
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from balance_tui import locations
from balance_tui.errors import UserError

#: The newest Apache Kafka 4.x that resolves with its dependencies on this project's machines.
DEFAULT_KAFKA_VERSION = "4.4.0"
MINIMUM_JAVA = 17
_TANSU_ADVICE = "or use --engine tansu"

#: `balance-tui kafka TOOL`: the distribution's `bin/kafka-TOOL.sh` and its main class.
TOOL_CLASSES: dict[str, str] = {
    "acls": "org.apache.kafka.tools.AclCommand",
    "broker-api-versions": "org.apache.kafka.tools.BrokerApiVersionsCommand",
    "client-metrics": "org.apache.kafka.tools.ClientMetricsCommand",
    "cluster": "org.apache.kafka.tools.ClusterTool",
    "configs": "org.apache.kafka.tools.ConfigCommand",
    "console-consumer": "org.apache.kafka.tools.consumer.ConsoleConsumer",
    "console-producer": "org.apache.kafka.tools.ConsoleProducer",
    "console-share-consumer": "org.apache.kafka.tools.consumer.ConsoleShareConsumer",
    "consumer-groups": "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
    "consumer-perf-test": "org.apache.kafka.tools.ConsumerPerformance",
    "delegation-tokens": "org.apache.kafka.tools.DelegationTokenCommand",
    "delete-records": "org.apache.kafka.tools.DeleteRecordsCommand",
    "dump-log": "org.apache.kafka.tools.DumpLogSegments",
    "e2e-latency": "org.apache.kafka.tools.EndToEndLatency",
    "features": "org.apache.kafka.tools.FeatureCommand",
    "get-offsets": "org.apache.kafka.tools.GetOffsetShell",
    "groups": "org.apache.kafka.tools.GroupsCommand",
    "jmx": "org.apache.kafka.tools.JmxTool",
    "leader-election": "org.apache.kafka.tools.LeaderElectionCommand",
    "log-dirs": "org.apache.kafka.tools.LogDirsCommand",
    "metadata-quorum": "org.apache.kafka.tools.MetadataQuorumCommand",
    "producer-perf-test": "org.apache.kafka.tools.ProducerPerformance",
    "reassign-partitions": "org.apache.kafka.tools.reassign.ReassignPartitionsCommand",
    "replica-verification": "org.apache.kafka.tools.ReplicaVerificationTool",
    "share-consumer-perf-test": "org.apache.kafka.tools.ShareConsumerPerformance",
    "share-groups": "org.apache.kafka.tools.consumer.group.ShareGroupCommand",
    "storage": "kafka.tools.StorageTool",
    "streams-groups": "org.apache.kafka.tools.streams.StreamsGroupCommand",
    "topics": "org.apache.kafka.tools.TopicCommand",
    "transactions": "org.apache.kafka.tools.TransactionsCommand",
    "verifiable-consumer": "org.apache.kafka.tools.VerifiableConsumer",
    "verifiable-producer": "org.apache.kafka.tools.VerifiableProducer",
    "verifiable-share-consumer": "org.apache.kafka.tools.VerifiableShareConsumer",
}
SERVER_CLASS = "kafka.Kafka"

#: JVM options of the tools run from jars: a small heap, and quick start-up over peak speed.
TOOL_JVM_OPTIONS = ("-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true")

_KAFKA_JAR = re.compile(r"kafka_(?P<scala>[0-9.]+)-(?P<version>[0-9][0-9A-Za-z.\-]*?)\.jar$")
_JAVA_VERSION = re.compile(r'version "(?P<version>[^"]+)"')


class KafkaUnavailable(UserError):
    """Apache Kafka cannot run here; the message says what is missing and what to do instead."""

    exit_code = 2


@dataclass(frozen=True)
class Java:
    """A `java` executable and its feature release (17 for "17.0.15")."""

    path: Path
    major: int
    version: str


def find_java() -> Java:
    """The `java` of JAVA_HOME, else the one on PATH; KafkaUnavailable if none, or older than 17."""
    candidates = []
    if os.environ.get("JAVA_HOME"):
        candidates.append(Path(os.environ["JAVA_HOME"]) / "bin" / "java")
    on_path = shutil.which("java")
    if on_path:
        candidates.append(Path(on_path))
    for path in candidates:
        if not (path.is_file() and os.access(path, os.X_OK)):
            continue
        try:
            out = subprocess.run([str(path), "-version"], capture_output=True, text=True, timeout=30,
                                 check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        match = _JAVA_VERSION.search(out.stderr + out.stdout)
        if not match:
            continue
        version = match.group("version")
        major = _java_major(version)
        if major < MINIMUM_JAVA:
            raise KafkaUnavailable(f"Apache Kafka 4 needs Java {MINIMUM_JAVA} or newer, {path} is Java {version}: "
                                   f"install OpenJDK {MINIMUM_JAVA} (e.g. `apt install openjdk-17-jre-headless`) "
                                   f"and set JAVA_HOME, {_TANSU_ADVICE}")
        return Java(path, major, version)
    raise KafkaUnavailable(f"Apache Kafka needs Java {MINIMUM_JAVA} or newer and no `java` was found (PATH, "
                           f"JAVA_HOME): install OpenJDK {MINIMUM_JAVA} (e.g. `apt install "
                           f"openjdk-17-jre-headless`), {_TANSU_ADVICE}")


def _java_major(version: str) -> int:
    parts = re.findall(r"\d+", version)
    if not parts:
        return 0
    first = int(parts[0])
    return int(parts[1]) if first == 1 and len(parts) > 1 else first  # "1.8.0_392" is Java 8


@dataclass(frozen=True)
class KafkaDistribution:
    """Where Apache Kafka's programs are: `home` (a distribution) or just its jars in `libs`."""

    version: str
    libs: Path
    java: Java
    #: A distribution's root, whose `bin/` scripts run everything; None for cached jars.
    home: Path | None = None

    @property
    def source(self) -> str:
        """Where Kafka came from, in words: `KAFKA_HOME /opt/kafka` or `jars cached in ...`."""
        return f"Kafka home {self.home}" if self.home else f"jars cached in {self.libs}"

    def script(self, tool: str) -> Path | None:
        """The distribution's `bin/kafka-TOOL.sh` (`kafka-server-start.sh` for the broker), if any."""
        if self.home is None:
            return None
        path = self.home / "bin" / f"kafka-{tool}.sh"
        return path if path.is_file() else None

    def java_command(self, main_class: str, args: Sequence[str], jvm_options: Sequence[str] = TOOL_JVM_OPTIONS,
                     log_config: Path | None = None, properties: dict[str, str] | None = None) -> list[str]:
        """`java <options> -cp libs/* <main class> <args>`."""
        command = [str(self.java.path), *jvm_options]
        if log_config is not None:
            command.append(f"-Dlog4j2.configurationFile={log_config}")
        command += [f"-D{key}={value}" for key, value in (properties or {}).items()]
        return [*command, "-cp", str(self.libs / "*"), main_class, *args]

    def tool_command(self, tool: str, args: Sequence[str]) -> list[str]:
        """The command line of Kafka's own `kafka-TOOL.sh ARGS` (a script, or its main class)."""
        name = normalise_tool_name(tool)
        script = self.script(name)
        if script is not None:
            return [str(script), *args]
        main_class = TOOL_CLASSES.get(name)
        if main_class is None:
            raise UserError(f"unknown Kafka tool {tool!r}; known: {', '.join(sorted(TOOL_CLASSES))}")
        return self.java_command(main_class, args, log_config=packaged_file("log4j2-tools.properties"))

    def tool_environment(self) -> dict[str, str]:
        """The environment for a tool: JAVA_HOME set to the Java found (the scripts honour it)."""
        env = dict(os.environ)
        env["JAVA_HOME"] = str(self.java.path.parent.parent)
        return env


def normalise_tool_name(tool: str) -> str:
    """`kafka-consumer-groups.sh`, `kafka-consumer-groups` and `consumer-groups` all name one tool."""
    return tool.removesuffix(".sh").removeprefix("kafka-")


def packaged_file(name: str) -> Path:
    """A file shipped beside this module (the POM, the log4j2 configurations)."""
    return Path(str(importlib.resources.files("balance_tui.kafka.brokers") / name))


def kafka_home_version(home: Path) -> str:
    """The version of the distribution at `home`, from its `libs/kafka_<scala>-<version>.jar`."""
    libs = home / "libs"
    if not (home / "bin").is_dir() or not libs.is_dir():
        raise KafkaUnavailable(f"{home} is not an Apache Kafka distribution (it needs bin/ and libs/); "
                               f"fix --kafka-home or KAFKA_HOME, {_TANSU_ADVICE}")
    for jar in sorted(libs.glob("kafka_*.jar")):
        match = _KAFKA_JAR.match(jar.name)
        if match and not jar.name.endswith(("-test.jar", "-sources.jar", "-javadoc.jar")):
            return match.group("version")
    raise KafkaUnavailable(f"{libs} holds no kafka_<scala>-<version>.jar: is {home} an Apache Kafka "
                           f"distribution? Fix --kafka-home or KAFKA_HOME, {_TANSU_ADVICE}")


def jars_dir(version: str) -> Path:
    """Where the jars of `version` are cached: `<user cache dir>/kafka/<version>/libs`."""
    return locations.cache_dir() / "kafka" / version / "libs"


def cached_jars(version: str) -> Path | None:
    """The cached jars of `version` if a resolution completed, else None (no network needed)."""
    libs = jars_dir(version)
    marker = libs.parent / "complete"
    if marker.is_file() and (libs / f"kafka_2.13-{version}.jar").is_file():
        return libs
    return None


def locate_kafka(version: str = DEFAULT_KAFKA_VERSION, kafka_home: Path | None = None, *, resolve: bool = True,
                 progress: Callable[[str], None] | None = None) -> KafkaDistribution:
    """Find Apache Kafka as the module docstring says; KafkaUnavailable (one line) if it cannot run.

    `resolve=False` never runs Maven: only a distribution or cached jars are accepted.
    """
    java = find_java()
    home = kafka_home or (Path(os.environ["KAFKA_HOME"]) if os.environ.get("KAFKA_HOME") else None)
    if home is not None:
        home = home.expanduser().resolve()
        return KafkaDistribution(version=kafka_home_version(home), libs=home / "libs", java=java, home=home)
    libs = cached_jars(version)
    if libs is None:
        if not resolve:
            raise KafkaUnavailable(f"the jars of Apache Kafka {version} are not cached yet "
                                   f"(`balance-tui broker --engine kafka` fetches them once), {_TANSU_ADVICE}")
        libs = resolve_with_maven(version, progress)
    return KafkaDistribution(version=version, libs=libs, java=java)


@contextlib.contextmanager
def _resolution_lock(version: str) -> Iterator[None]:
    """One resolution at a time per version, across processes (two demos started at once)."""
    lock_path = locations.cache_dir() / "kafka" / f"{version}.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def resolve_with_maven(version: str, progress: Callable[[str], None] | None = None) -> Path:
    """Resolve Kafka's jars with Maven into the cache; the libs directory, or KafkaUnavailable."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise KafkaUnavailable(f"Maven (`mvn`) is needed once to fetch Apache Kafka {version}'s jars and is not "
                               f"installed: install it (e.g. `apt install maven`), or set KAFKA_HOME to an Apache "
                               f"Kafka distribution, {_TANSU_ADVICE}")
    with _resolution_lock(version):
        done = cached_jars(version)
        if done is not None:  # another process finished it while we waited
            return done
        libs = jars_dir(version)
        staging = libs.with_name(f"libs.partial-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        say = progress or (lambda text: None)
        counter = _DownloadCounter(version, say)
        try:
            _fetch(mvn, version, staging, counter)
            if not (staging / f"kafka_2.13-{version}.jar").is_file():
                raise KafkaUnavailable(f"Maven resolved no kafka_2.13-{version}.jar; is {version} an Apache Kafka "
                                       f"release? Set kafka_version to one, {_TANSU_ADVICE}")
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        shutil.rmtree(libs, ignore_errors=True)
        staging.replace(libs)
        jars = len(list(libs.glob("*.jar")))
        (libs.parent / "complete").write_text(f"{jars} jars resolved "
                                              f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n")
        say(f"Apache Kafka {version}: {counter.downloads} files fetched, {jars} jars cached in {libs}")
        return libs


def _fetch(mvn: str, version: str, staging: Path, counter: _DownloadCounter) -> None:
    """Kafka's runtime dependencies, then log4j2's slf4j binding of Kafka's own log4j version.

    The distribution ships that binding; without it the broker would log nothing at all.
    """
    pom = packaged_file("kafka-pom.xml")
    _run_maven([mvn, "-B", "-f", str(pom), f"-Dkafka.version={version}", "dependency:copy-dependencies",
                "-DincludeScope=runtime", f"-DoutputDirectory={staging}"], version, counter)
    log4j = sorted(staging.glob("log4j-core-*.jar"))
    if log4j:
        log4j_version = log4j[-1].name.removeprefix("log4j-core-").removesuffix(".jar")
        _run_maven([mvn, "-B", "-f", str(pom), "dependency:copy",
                    f"-Dartifact=org.apache.logging.log4j:log4j-slf4j-impl:{log4j_version}",
                    f"-DoutputDirectory={staging}"], version, counter)


class _DownloadCounter:
    """Turns Maven's output into a short progress line (Maven's own lines stay in the log)."""

    def __init__(self, version: str, say: Callable[[str], None]) -> None:
        self.version = version
        self.say = say
        self.downloads = 0
        self._last = 0.0

    def line(self, text: str) -> None:
        if text.startswith("Downloaded from"):
            self.downloads += 1
            now = time.monotonic()
            if now - self._last >= 0.5:
                self._last = now
                self.say(f"fetching Apache Kafka {self.version} with Maven (once): {self.downloads} files")


def _run_maven(command: list[str], version: str, counter: _DownloadCounter) -> None:
    log_path = locations.cache_dir() / "kafka" / f"maven-{version}.log"
    errors: list[str] = []
    counter.say(f"fetching Apache Kafka {version} with Maven (once; log {log_path})")
    with log_path.open("a", encoding="utf-8") as log:
        try:
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                       stdin=subprocess.DEVNULL, errors="replace")
        except OSError as error:
            raise KafkaUnavailable(f"cannot run Maven: {error}") from None
        assert process.stdout is not None
        for raw in process.stdout:
            log.write(raw)
            text = raw.strip()
            counter.line(text)
            if text.startswith("[ERROR]") and len(errors) < 5:
                errors.append(text.removeprefix("[ERROR]").strip())
        code = process.wait()
    if code != 0:
        first = next((line for line in errors if line), f"exit code {code}")
        hint = " (no network?)" if any(word in " ".join(errors).lower() for word in
                                       ("transfer", "resolve", "unknown host", "connect", "network",
                                        "offline")) else ""
        raise KafkaUnavailable(f"Maven could not fetch Apache Kafka {version}{hint}: {_without_urls(first)[:300]} "
                               f"(log {log_path}); set KAFKA_HOME to a Kafka distribution, {_TANSU_ADVICE}")


def _without_urls(text: str) -> str:
    return re.sub(r"\s*\(?https?://\S+\)?", "", text)


def run_tool(distribution: KafkaDistribution, tool: str, args: Sequence[str]) -> int:
    """Run Kafka's `kafka-TOOL.sh ARGS` in the foreground with this terminal; its exit code."""
    command = distribution.tool_command(tool, args)
    try:
        return subprocess.call(command, env=distribution.tool_environment())
    except KeyboardInterrupt:
        return 130
    except OSError as error:
        raise UserError(f"cannot run {command[0]}: {error}") from None


def progress_printer(stream=sys.stderr) -> Callable[[str], None]:  # type: ignore[no-untyped-def]
    """Progress lines for a terminal (rewritten in place) or a log (one line each)."""
    interactive = stream.isatty()

    def say(text: str) -> None:
        if interactive:
            stream.write(f"\r\033[Kbalance-tui: {text}")
            if text.startswith("Apache Kafka"):
                stream.write("\n")
        else:
            stream.write(f"balance-tui: {text}\n")
        stream.flush()

    return say
