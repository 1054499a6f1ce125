"""Provides the settings that have a command-line flag, shared by the parser and the lab (which passes
some on to its members and keeps the secret ones out of what it records)."""

from __future__ import annotations

from balance_tui.config import SECRET_SETTINGS, STRATEGIES

#: Settings that have a command-line flag: field name -> (flag, help).
SETTING_FLAGS: dict[str, tuple[str, str]] = {
    "bootstrap_servers": ("--bootstrap-servers", "Kafka bootstrap servers (default localhost:9092)"),
    "topic": ("--topic", "transactions topic (default banking.transactions)"),
    "group": ("--group", "consumer group id (default balance-service)"),
    "partitions": ("--partitions", "partition count when creating the topic (default 6)"),
    "strategy": ("--strategy", f"assignment strategy: {', '.join(STRATEGIES)} (default cooperative-sticky; "
                               "consumer is KIP-848's protocol)"),
    "remote_assignor": ("--remote-assignor", "with --strategy consumer: the broker's assignor, uniform or range"),
    "group_instance_id": ("--instance-id", "static membership (group.instance.id): same id, same partitions "
                                           "after a quick restart"),
    "session_timeout_ms": ("--session-timeout-ms", "consumer session timeout (default 10000)"),
    "heartbeat_interval_ms": ("--heartbeat-interval-ms", "consumer heartbeat interval (default 3000)"),
    "work_ms": ("--work-ms", "simulated processing time per transaction in ms (default 2)"),
    "changelog": ("--changelog", "on or off: write and restore the balance changelog (default on)"),
    "commit_interval_ms": ("--commit-interval-ms", "offset commit interval (default 1000)"),
    "flush_interval_ms": ("--flush-interval-ms", "changelog write interval: one record per changed customer "
                          "(default 1000)"),
    "lag_alert_threshold": ("--lag-alert-threshold", ("alert when my lag stays above N messages, or Ns seconds of "
                                                      "lag, for --lag-alert-for (default 1000; off for none)")),
    "lag_alert_for": ("--lag-alert-for", "how long the lag must stay above the threshold: 5m, 300s (default 5m)"),
    "lag_window": ("--lag-window", "window of the Burrow-style lag status OK/WARN/STALL/STOP/REWIND (default 60s)"),
    "session_log": ("--session-log", "JSON Lines session log path (default: under the state directory)"),
    "security_protocol": ("--security-protocol", "plaintext, ssl, sasl_plaintext or sasl_ssl"),
    "sasl_mechanism": ("--sasl-mechanism", "SASL mechanism (PLAIN, SCRAM-SHA-256, ...)"),
    "sasl_username": ("--sasl-username", "SASL username"),
    "sasl_password": ("--sasl-password", "SASL password (prefer BALANCE_TUI_SASL_PASSWORD)"),
    "ssl_ca_location": ("--ssl-ca-location", "CA bundle to verify the brokers"),
    "ssl_certificate_location": ("--ssl-certificate-location", "client certificate (mutual TLS)"),
    "ssl_key_location": ("--ssl-key-location", "client private key (mutual TLS)"),
    "ssl_key_password": ("--ssl-key-password", "client private key password (prefer BALANCE_TUI_SSL_KEY_PASSWORD)"),
    "http_port": ("--http-port", "serve the HTTP API on this port (default off; 0 picks a free port)"),
    "http_host": ("--http-host", "address the HTTP API listens on (default 127.0.0.1; 0.0.0.0 in containers)"),
    "broker_engine": ("--engine", "broker that `broker` and `demo` start: auto, kafka or tansu (default auto)"),
    "kafka_version": ("--kafka-version", "Apache Kafka release to fetch when no Kafka home is given (default 4.4.0)"),
    "kafka_home": ("--kafka-home", "an Apache Kafka distribution to use (default: KAFKA_HOME)"),
}

#: The flags of the secret settings, whose values a recorded command line must not hold.
SECRET_FLAGS = tuple(SETTING_FLAGS[name][0] for name in SECRET_SETTINGS)
