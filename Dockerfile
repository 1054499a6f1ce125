# balance-tui as the lab's EBankingBalanceAPI: one headless consumer-group member per container,
# with the HTTP API (the lab's /api/Balance/..., /swagger, Prometheus /metrics) on 0.0.0.0:8080.
#
# Configuration comes from the environment only (docs/deploy.md): the lab's Kafka__BootstrapServers,
# Kafka__GroupId, Kafka__Topic, and BALANCE_TUI_<SETTING> (secrets such as BALANCE_TUI_SASL_PASSWORD
# from a Secret), or a TOML file mounted at /etc/balance-tui/config.toml. Nothing secret is baked in.
#
#   docker build -t ebanking-balance-api:latest .
#   docker run --rm -p 8080:8080 -e Kafka__BootstrapServers=kafka:9092 ebanking-balance-api:latest

ARG PYTHON_IMAGE=docker.io/library/python:3.11-slim-bookworm

# -- build: the project and its dependencies in a virtual environment ----------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY balance_tui ./balance_tui
RUN python3 -m venv /opt/balance-tui \
 && /opt/balance-tui/bin/pip install --no-compile . \
 && /opt/balance-tui/bin/python -m compileall -q /opt/balance-tui/lib

# -- run: the environment only, as a non-root user ------------------------------------------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="balance-tui" \
      org.opencontainers.image.description="Kafka consumer-group member computing bank balances, with the lab's HTTP API" \
      org.opencontainers.image.licenses="Apache-2.0"
# UID 10001, group 0 with group-writable state: OpenShift runs the image under a random UID in group 0.
RUN useradd --uid 10001 --gid 0 --home-dir /home/balance --create-home --shell /usr/sbin/nologin balance \
 && mkdir -p /var/lib/balance-tui /etc/balance-tui \
 && chown -R 10001:0 /home/balance /var/lib/balance-tui \
 && chmod -R g=u /home/balance /var/lib/balance-tui
COPY --from=build /opt/balance-tui /opt/balance-tui
ENV PATH=/opt/balance-tui/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HOME=/home/balance \
    XDG_STATE_HOME=/var/lib/balance-tui \
    XDG_CONFIG_HOME=/etc
USER 10001
WORKDIR /home/balance
EXPOSE 8080
# SIGTERM: leave the group cleanly (LeaveGroup, final export), as Kubernetes asks on scale-down.
STOPSIGNAL SIGTERM
ENTRYPOINT ["balance-tui"]
CMD ["--headless", "--http-host", "0.0.0.0", "--http-port", "8080", "--connect-timeout", "30"]
