"""deploy/kubernetes/ and deploy/cluster/kubernetes/: valid against the Kubernetes schemas
(kubernetes-validate, offline) and KEDA's fields, and safe by default: non-root, read-only,
no capabilities, pinned image, operator endpoints never behind the Ingress."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from pydantic import SecretStr
from starlette.routing import BaseRoute, Route

from couples_nudge.common.keys import NOTIFIER_GROUP, Keys
from couples_nudge.common.secret_files import SUFFIX, secret_variables
from couples_nudge.common.settings import CommonSettings
from couples_nudge.notifier.service import NotifierService
from couples_nudge.notifier.settings import NotifierSettings
from couples_nudge.scheduler.settings import SchedulerSettings
from tests.support.keda import KEDA_SCHEMAS

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = {
    "single": REPO / "deploy" / "kubernetes" / "nudge.yaml",
    "cluster": REPO / "deploy" / "cluster" / "kubernetes" / "nudge.yaml",
}
# The oldest Kubernetes still in wide use that the manifests promise to work on, and the newest
# kubernetes-validate knows.
K8S_VERSIONS = ("1.28.0", kubernetes_validate.latest_version())
DIGEST_IMAGE = re.compile(r"^[a-z0-9.-]+(/[A-Za-z0-9._-]+)+@sha256:[0-9a-f]{64}$")
OPERATOR_PORT = 9090
PUBLIC_PORT = 8080
layouts = pytest.mark.parametrize("layout", sorted(MANIFESTS))


@cache
def _documents(layout: str) -> tuple[dict[str, Any], ...]:
    return tuple(doc for doc in yaml.safe_load_all(MANIFESTS[layout].read_text()) if doc)


def _kind(layout: str, kind: str) -> list[dict[str, Any]]:
    return [doc for doc in _documents(layout) if doc["kind"] == kind]


def _named(layout: str, kind: str, name: str) -> dict[str, Any]:
    [doc] = [d for d in _kind(layout, kind) if d["metadata"]["name"] == name]
    return doc


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return dict(container)


def _env(layout: str, deployment: dict[str, Any]) -> dict[str, str]:
    [config] = _kind(layout, "ConfigMap")
    own = {e["name"]: e["value"] for e in _container(deployment).get("env", [])}
    return {**config["data"], **own}


def _service_model(deployment: dict[str, Any]) -> type[CommonSettings]:
    return (
        NotifierSettings
        if deployment["metadata"]["name"] == "nudge-notifier"
        else SchedulerSettings
    )


class TestSchemas:
    @layouts
    @pytest.mark.parametrize("version", K8S_VERSIONS)
    def test_every_core_resource_is_valid_for_kubernetes(self, layout: str, version: str) -> None:
        """Strict schema validation (unknown fields fail) of every non-KEDA resource."""
        core = [d for d in _documents(layout) if not d["apiVersion"].startswith("keda.sh/")]
        kinds = {d["kind"] for d in core}
        assert kinds >= {
            "ConfigMap",
            "Deployment",
            "Service",
            "Ingress",
            "NetworkPolicy",
            "PodDisruptionBudget",
        }
        for doc in core:
            kubernetes_validate.validate(doc, version, strict=True)

    @layouts
    def test_keda_resources_use_only_fields_keda_knows(self, layout: str) -> None:
        """The ScaledObject and TriggerAuthentication against the fields KEDA documents."""
        keda = [d for d in _documents(layout) if d["apiVersion"].startswith("keda.sh/")]
        assert {d["kind"] for d in keda} == {"ScaledObject", "TriggerAuthentication"}
        for doc in keda:
            jsonschema.validate(doc, KEDA_SCHEMAS[doc["kind"]])

    def test_the_validator_would_catch_a_misspelt_field(self) -> None:
        """The checks above can fail: a misspelt securityContext field is refused."""
        [deployment, *_] = _kind("single", "Deployment")
        broken = yaml.safe_load(yaml.safe_dump(deployment))
        broken["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRoot"] = 1
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, K8S_VERSIONS[0], strict=True)


class TestDeployments:
    @layouts
    def test_pods_run_unprivileged_on_a_read_only_filesystem(self, layout: str) -> None:
        """Non-root uid 10001 (the image's), RuntimeDefault seccomp, no privilege escalation,
        read-only root, every capability dropped, no service account token."""
        for deployment in _kind(layout, "Deployment"):
            pod = deployment["spec"]["template"]["spec"]
            assert pod["securityContext"]["runAsNonRoot"] is True
            assert pod["securityContext"]["runAsUser"] == 10001
            assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
            assert pod["automountServiceAccountToken"] is False
            context = _container(deployment)["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["readOnlyRootFilesystem"] is True
            assert context["capabilities"] == {"drop": ["ALL"]}

    @layouts
    def test_the_image_is_pinned_by_digest(self, layout: str) -> None:
        """registry/owner/name@sha256:<64 hex>: never a moving tag such as :latest."""
        for deployment in _kind(layout, "Deployment"):
            image = _container(deployment)["image"]
            assert DIGEST_IMAGE.match(image), image

    @layouts
    def test_probes_and_resources(self, layout: str) -> None:
        """Startup and liveness on /healthz, readiness on /readyz, all on the operator port;
        CPU and memory requests and a memory limit."""
        for deployment in _kind(layout, "Deployment"):
            container = _container(deployment)
            ports = {p["name"]: p["containerPort"] for p in container["ports"]}
            assert ports["operator"] == OPERATOR_PORT
            for probe, path in (
                ("startupProbe", "/healthz"),
                ("livenessProbe", "/healthz"),
                ("readinessProbe", "/readyz"),
            ):
                assert container[probe]["httpGet"] == {"path": path, "port": "operator"}
            assert {"cpu", "memory"} <= set(container["resources"]["requests"])
            assert "memory" in container["resources"]["limits"]

    @layouts
    def test_the_environment_is_valid_settings_with_secrets_as_files(self, layout: str) -> None:
        """Every variable is a setting of that service; secrets come only as *_FILE paths into
        the mounted Secret, each naming a key the volume projects."""
        for deployment in _kind(layout, "Deployment"):
            model = _service_model(deployment)
            env = _env(layout, deployment)
            secret_names = {n for _, names in secret_variables(model) for n in names}
            files = {k: v for k, v in env.items() if k.endswith(SUFFIX)}
            plain = {k: v for k, v in env.items() if k not in files}
            assert {k.removesuffix(SUFFIX) for k in files} <= secret_names
            assert set(plain) & secret_names == set(), "a secret in plain sight"
            fields = {f"NUDGE_{name.upper()}" for name in model.model_fields}
            assert set(plain) <= fields, set(plain) - fields
            values: dict[str, object] = {
                k.removeprefix("NUDGE_").lower(): v for k, v in plain.items()
            }
            if "NUDGE_UNSUBSCRIBE_SECRETS_FILE" in files:  # goes with NUDGE_PUBLIC_URL
                values["unsubscribe_secrets"] = [SecretStr("k1:" + "x" * 40)]
            settings = model.model_validate(values)
            assert settings.operator_port == OPERATOR_PORT
            pod = deployment["spec"]["template"]["spec"]
            [mount] = [m for m in _container(deployment)["volumeMounts"] if m["name"] == "secrets"]
            [volume] = [v for v in pod["volumes"] if v["name"] == "secrets"]
            projected = {
                f"{mount['mountPath']}/{item['path']}" for item in volume["secret"]["items"]
            }
            assert set(files.values()) <= projected
            assert f"REDIS_URL{SUFFIX}" in files

    @layouts
    def test_only_the_notifier_listens_publicly(self, layout: str) -> None:
        """The notifier has a public port (NUDGE_HTTP_PORT) beside the operator port; the
        scheduler has only the operator port."""
        notifier = _named(layout, "Deployment", "nudge-notifier")
        scheduler = _named(layout, "Deployment", "nudge-scheduler")
        assert _env(layout, notifier)["NUDGE_HTTP_PORT"] == str(PUBLIC_PORT)
        assert "NUDGE_HTTP_PORT" not in _env(layout, scheduler)
        assert {p["name"] for p in _container(scheduler)["ports"]} == {"operator"}


def _notifier_routes() -> tuple[list[BaseRoute], list[BaseRoute]]:
    """The notifier's real public and operator routes (nothing connects: no I/O here)."""
    settings = NotifierSettings(
        public_url="https://nudges.example.org",
        unsubscribe_secrets=[SecretStr("k1:" + "x" * 40)],
    )
    service = NotifierService(settings)
    return service.public_routes(), service.operator_routes()


def _paths(routes: list[BaseRoute]) -> list[str]:
    return [route.path for route in routes if isinstance(route, Route)]


class TestExposure:
    @layouts
    def test_the_ingress_routes_only_to_the_public_service_port(self, layout: str) -> None:
        """Every Ingress backend is the notifier's public Service, whose port is the public
        container port; the operator Services target only the operator port."""
        [ingress] = _kind(layout, "Ingress")
        backends = {
            (p["backend"]["service"]["name"], p["backend"]["service"]["port"]["name"])
            for rule in ingress["spec"]["rules"]
            for p in rule["http"]["paths"]
        }
        assert backends == {("nudge-notifier-public", "http")}
        public = _named(layout, "Service", "nudge-notifier-public")
        assert [p["targetPort"] for p in public["spec"]["ports"]] == ["http"]
        for service in _kind(layout, "Service"):
            if service["metadata"]["name"].endswith("-operator"):
                assert [p["targetPort"] for p in service["spec"]["ports"]] == ["operator"]

    @layouts
    def test_every_public_route_and_no_operator_route_is_exposed(self, layout: str) -> None:
        """The Ingress prefixes cover each of the notifier's public routes and none of its
        operator routes (/healthz, /readyz, /metrics, /status...)."""
        [ingress] = _kind(layout, "Ingress")
        prefixes = [p["path"] for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
        assert all(p.endswith("/") and p != "/" for p in prefixes)
        public, operator = _notifier_routes()
        assert _paths(public)
        for path in _paths(public):
            assert any(path.startswith(prefix) for prefix in prefixes), path
        for path in _paths(operator):
            assert not any(path.startswith(prefix) for prefix in prefixes), path

    @layouts
    def test_network_policies_admit_only_the_ingress_and_monitoring(self, layout: str) -> None:
        """Ingress traffic: the public port from the ingress controller's namespace and the
        operator port from monitoring; egress to Redis and DNS (and mail/push for the
        notifier). Both policies restrict both directions."""
        for name, allowed in (
            ("nudge-notifier", {(PUBLIC_PORT, "ingress-nginx"), (OPERATOR_PORT, "monitoring")}),
            ("nudge-scheduler", {(OPERATOR_PORT, "monitoring")}),
        ):
            policy = _named(layout, "NetworkPolicy", name)["spec"]
            assert policy["podSelector"]["matchLabels"] == {"app": name}
            assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
            admitted = {
                (
                    port["port"],
                    peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
                )
                for rule in policy["ingress"]
                for port in rule["ports"]
                for peer in rule["from"]
            }
            assert admitted == allowed
            egress_ports = {port["port"] for rule in policy["egress"] for port in rule["ports"]}
            assert {6379, 53} <= egress_ports


class TestAvailabilityAndScaling:
    @layouts
    def test_each_deployment_has_a_disruption_budget(self, layout: str) -> None:
        """A drain leaves at least one scheduler and one notifier running."""
        budgets = {
            b["spec"]["selector"]["matchLabels"]["app"]: b["spec"]["minAvailable"]
            for b in _kind(layout, "PodDisruptionBudget")
        }
        assert budgets == {"nudge-scheduler": 1, "nudge-notifier": 1}

    @layouts
    def test_keda_watches_every_due_stream_of_the_notifier_group(self, layout: str) -> None:
        """One redis(-cluster)-streams trigger per shard's due stream (NUDGE_SHARDS from the
        ConfigMap), group `notifier`, on the lag; KEDA owns the notifier's replica count and
        never goes below what the disruption budget keeps, plus one."""
        [config] = _kind(layout, "ConfigMap")
        shards = int(config["data"]["NUDGE_SHARDS"])
        cluster = config["data"].get("NUDGE_REDIS_CLUSTER") == "true"
        [scaled] = _kind(layout, "ScaledObject")
        spec = scaled["spec"]
        assert spec["scaleTargetRef"]["name"] == "nudge-notifier"
        assert "replicas" not in _named(layout, "Deployment", "nudge-notifier")["spec"]
        assert spec["minReplicaCount"] >= 2
        triggers = spec["triggers"]
        assert {t["type"] for t in triggers} == {
            "redis-cluster-streams" if cluster else "redis-streams"
        }
        assert sorted(t["metadata"]["stream"] for t in triggers) == sorted(
            Keys(shards=shards).all_due()
        )
        assert {t["metadata"]["consumerGroup"] for t in triggers} == {NOTIFIER_GROUP}
        [auth] = _kind(layout, "TriggerAuthentication")
        assert {t["authenticationRef"]["name"] for t in triggers} == {auth["metadata"]["name"]}
