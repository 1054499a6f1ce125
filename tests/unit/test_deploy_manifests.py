"""The Kubernetes and OpenShift manifests: valid offline against the schemas, and naming what the app serves
and reads."""

from __future__ import annotations

import re
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from balance_tui.api.app import LIVENESS_STALL_SECONDS, create_app
from balance_tui.api.store import ApiStore
from balance_tui.cli import build_parser
from balance_tui.config import LAB_ENV_NAMES, Settings, load_settings
from balance_tui.headless import STOP_DEADLINE_SECONDS
from tests.deploy_files import (
    KUBERNETES,
    LAB_NAMESPACE,
    OPENSHIFT,
    by_kind,
    dockerfile_instructions,
    final_stage,
    kubernetes_documents,
    load_documents,
)

KUBERNETES_VERSION = kubernetes_validate.latest_version()

# Not in the Kubernetes schemas: the fields these manifests use, from the OpenShift and Prometheus
# Operator API references (route.openshift.io/v1 Route, monitoring.coreos.com/v1 ServiceMonitor).
ROUTE_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "route.openshift.io/v1"},
        "kind": {"const": "Route"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object", "required": ["to"], "additionalProperties": False,
            "properties": {
                "host": {"type": "string"}, "path": {"type": "string"},
                "to": {"type": "object", "required": ["kind", "name"], "additionalProperties": False,
                       "properties": {"kind": {"enum": ["Service", ""]}, "name": {"type": "string"},
                                      "weight": {"type": "integer", "minimum": 0, "maximum": 256}}},
                "port": {"type": "object", "required": ["targetPort"], "additionalProperties": False,
                         "properties": {"targetPort": {"type": ["string", "integer"]}}},
                "tls": {"type": "object", "required": ["termination"], "additionalProperties": False,
                        "properties": {"termination": {"enum": ["edge", "passthrough", "reencrypt"]},
                                       "insecureEdgeTerminationPolicy": {"enum": ["Allow", "Disable", "Redirect", ""]},
                                       "certificate": {"type": "string"}, "key": {"type": "string"},
                                       "caCertificate": {"type": "string"},
                                       "destinationCACertificate": {"type": "string"}}},
                "wildcardPolicy": {"enum": ["None", "Subdomain"]},
            },
        },
    },
}
SERVICE_MONITOR_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "spec": {
            "type": "object", "required": ["selector", "endpoints"],
            "properties": {
                "selector": {"type": "object", "properties": {"matchLabels": {"type": "object"}}},
                "endpoints": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "additionalProperties": False,
                    "properties": {"port": {"type": "string"}, "path": {"type": "string"},
                                   "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"}}}},
            },
        },
    },
}
OTHER_SCHEMAS = {"Route": ROUTE_SCHEMA, "ServiceMonitor": SERVICE_MONITOR_SCHEMA}


def all_manifests() -> list[tuple[str, dict[str, Any]]]:
    found = [(f"{path.relative_to(KUBERNETES.parent.parent)}", document)
             for path, documents in kubernetes_documents().items() for document in documents]
    found += [(f"openshift/{document['kind']}", document) for document in load_documents(OPENSHIFT, LAB_NAMESPACE)]
    return found


@pytest.mark.parametrize(("where", "document"), all_manifests(),
                         ids=lambda value: value if isinstance(value, str) else "")
def test_every_manifest_is_valid_offline(where: str, document: dict[str, Any]) -> None:
    if document["kind"] in OTHER_SCHEMAS:
        jsonschema.validate(document, OTHER_SCHEMAS[document["kind"]])
    else:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_openshift_takes_the_namespace_as_the_lab_substitutes_it() -> None:
    text = OPENSHIFT.read_text()
    assert set(re.findall(r"\$\{[^}]*\}", text)) == {"${NAMESPACE}"}
    documents = load_documents(OPENSHIFT, LAB_NAMESPACE)
    assert {d["metadata"]["namespace"] for d in documents} == {LAB_NAMESPACE}
    route = by_kind(documents, "Route")
    assert route["metadata"]["name"] == "ebanking-balance-api-secure"  # the lab's `oc get route` name
    assert route["spec"]["tls"]["termination"] == "edge"


def served_paths() -> set[str]:
    app = create_app(ApiStore("c", "g", "t"))
    return {route.path for route in app.routes}


def workloads() -> list[tuple[str, list[dict[str, Any]]]]:
    kubernetes = [d for documents in kubernetes_documents().values() for d in documents]
    return [("kubernetes", kubernetes), ("openshift", load_documents(OPENSHIFT, LAB_NAMESPACE))]


@pytest.mark.parametrize(("flavour", "documents"), workloads(), ids=["kubernetes", "openshift"])
def test_the_deployment_names_what_the_app_serves_and_reads(flavour: str, documents: list[dict[str, Any]],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    deployment, service = by_kind(documents, "Deployment"), by_kind(documents, "Service")
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]

    # The command line is the image's and serves HTTP on the container port.
    instructions = final_stage(dockerfile_instructions())
    (cmd,) = [i for i in instructions if i.keyword == "CMD"]
    assert container["args"] == cmd.exec_form()
    args = build_parser().parse_args(container["args"])
    (port,) = container["ports"]
    assert args.headless and args.http_host == "0.0.0.0" and int(args.http_port) == port["containerPort"] == 8080

    # Probes name real endpoints on that port, with the right roles.
    assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": port["name"]}
    assert container["startupProbe"]["httpGet"] == {"path": "/livez", "port": port["name"]}
    assert container["readinessProbe"]["httpGet"] == {"path": "/api/Balance/health", "port": port["name"]}
    assert {"/livez", "/api/Balance/health", "/metrics"} <= served_paths()
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/path"] in served_paths() and annotations["prometheus.io/port"] == "8080"

    # Leaving cleanly fits in the grace period; the preStop hook starts it.
    assert pod["spec"]["terminationGracePeriodSeconds"] > STOP_DEADLINE_SECONDS
    pre_stop = " ".join(container["lifecycle"]["preStop"]["exec"]["command"])
    assert "kill -TERM 1" in pre_stop
    # A member is restarted only after the consumer thread stayed silent past the liveness threshold.
    liveness = container["livenessProbe"]
    assert liveness["periodSeconds"] * liveness["failureThreshold"] + LIVENESS_STALL_SECONDS >= 60

    # Every environment variable is one the settings read, and together they make valid settings.
    config_map = by_kind(documents, "ConfigMap")
    secret = by_kind(documents, "Secret")
    refs = container["envFrom"]
    assert {"configMapRef": {"name": config_map["metadata"]["name"]}} in refs
    assert {"secretRef": {"name": secret["metadata"]["name"], "optional": True}} in refs
    known = set(LAB_ENV_NAMES) | {f"BALANCE_TUI_{field.upper()}" for field in Settings.model_fields}
    names = (set(config_map["data"]) | set(secret.get("stringData") or {})
             | {e["name"] for e in container.get("env", [])})
    assert names <= known, names - known
    for name in names:
        monkeypatch.setenv(name, config_map["data"].get(name, "x"))
    settings = load_settings()
    assert settings.bootstrap_servers == "kafka-svc:9092" and settings.group == "balance-service"

    # The Service reaches the pods on the named port.
    selector = service["spec"]["selector"]
    assert selector.items() <= pod["metadata"]["labels"].items()
    assert selector.items() <= deployment["spec"]["selector"]["matchLabels"].items()
    (service_port,) = service["spec"]["ports"]
    assert service_port["targetPort"] == port["name"] and service_port["port"] == 8080


def test_the_secret_documents_keys_the_settings_read() -> None:
    text = (KUBERNETES / "secret.yaml").read_text()
    documented = set(re.findall(r"\b(BALANCE_TUI_[A-Z_]+)", text))
    known = {f"BALANCE_TUI_{field.upper()}" for field in Settings.model_fields}
    assert documented and documented <= known, documented - known


def test_ingress_route_and_service_monitor_point_at_the_service() -> None:
    kubernetes = [d for documents in kubernetes_documents().values() for d in documents]
    service = by_kind(kubernetes, "Service")
    port_names = {p["name"] for p in service["spec"]["ports"]}
    backend = by_kind(kubernetes, "Ingress")["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": service["metadata"]["name"], "port": {"name": "http"}} and "http" in port_names
    monitor = by_kind(kubernetes, "ServiceMonitor")["spec"]
    assert monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert {e["port"] for e in monitor["endpoints"]} <= port_names
    assert {e["path"] for e in monitor["endpoints"]} <= served_paths()

    openshift = load_documents(OPENSHIFT, LAB_NAMESPACE)
    route, os_service = by_kind(openshift, "Route"), by_kind(openshift, "Service")
    assert route["spec"]["to"]["name"] == os_service["metadata"]["name"]
    assert route["spec"]["port"]["targetPort"] in {p["name"] for p in os_service["spec"]["ports"]}


def test_only_the_optional_manifests_need_more_than_kubectl_apply() -> None:
    top_level = {path.name for path in KUBERNETES.glob("*.yaml")}
    assert top_level == {"configmap.yaml", "secret.yaml", "deployment.yaml", "service.yaml"}
    assert {path.name for path in (KUBERNETES / "optional").glob("*.yaml")} == {"ingress.yaml", "servicemonitor.yaml"}
