"""deploy/cluster/: the compose file and the Kubernetes example configure a cluster deployment
consistently (no Docker engine or Kubernetes here, so these checks stand in for a run)."""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from couples_nudge.common.slots import SLOTS, balanced_ranges, shard_slot
from couples_nudge.notifier.settings import NotifierSettings
from couples_nudge.scheduler.settings import SchedulerSettings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "cluster"


def _compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    return document


def _manifests() -> list[dict[str, Any]]:
    text = (DEPLOY / "kubernetes" / "nudge.yaml").read_text()
    return [doc for doc in yaml.safe_load_all(text) if doc]


def _k8s_env(kind: str) -> dict[str, str]:
    """A Deployment's environment: the shared ConfigMap plus its own `env` entries."""
    [config] = [d for d in _manifests() if d["kind"] == "ConfigMap"]
    [deployment] = [
        d
        for d in _manifests()
        if d["kind"] == "Deployment" and d["metadata"]["name"] == f"nudge-{kind}"
    ]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    own = {e["name"]: e["value"] for e in container.get("env", [])}
    secrets = {
        ref["secretRef"]["name"] for ref in container.get("envFrom", []) if "secretRef" in ref
    }
    stand_ins = SECRET_STAND_INS if "nudge-email" in secrets else {}
    return {**config["data"], **own, **stand_ins}


# What the operator's secrets (compose: .env; Kubernetes: the nudge-email Secret) provide.
SECRET_STAND_INS = {"NUDGE_UNSUBSCRIBE_SECRETS": "k1:" + "x" * 32}
_REQUIRED = re.compile(r"^\$\{(\w+):\?[^}]*\}$")
_DEFAULTED = re.compile(r"^\$\{\w+:-([^}]*)\}$")


def _interpolated(env: dict[str, str]) -> dict[str, str]:
    """Compose's ${VAR:-default} as the default, ${VAR:?message} as the operator's value."""
    resolved = {}
    for name, value in env.items():
        if required := _REQUIRED.match(str(value)):
            value = SECRET_STAND_INS[required.group(1)]
        elif defaulted := _DEFAULTED.match(str(value)):
            value = defaulted.group(1)
        resolved[name] = value
    return resolved


def _valid(kind: str, env: dict[str, str]) -> None:
    """The environment builds the service's settings (unknown NUDGE_ names would be ignored,
    so every name must also be a field)."""
    model = SchedulerSettings if kind == "scheduler" else NotifierSettings
    fields = {f"NUDGE_{name.upper()}" for name in model.model_fields} | {"REDIS_URL"}
    assert set(env) <= fields, set(env) - fields
    settings = model.model_validate({k.removeprefix("NUDGE_").lower(): v for k, v in env.items()})
    assert settings.redis_cluster


class TestCompose:
    @pytest.mark.parametrize("kind", ["scheduler", "notifier"])
    def test_each_service_is_configured_for_the_cluster(self, kind: str) -> None:
        """NUDGE_REDIS_CLUSTER is on and every variable is a real setting of that service."""
        env = _interpolated(_compose()["services"][kind]["environment"])
        _valid(kind, {k: v for k, v in env.items() if k != "REDIS_URL"})

    def test_both_services_share_one_shard_count(self) -> None:
        """NUDGE_SHARDS is identical for schedulers and notifiers (it is fixed per deployment)."""
        services = _compose()["services"]
        shards = {services[k]["environment"]["NUDGE_SHARDS"] for k in ("scheduler", "notifier")}
        assert len(shards) == 1

    def test_the_slot_ranges_give_every_primary_an_equal_share_of_the_shards(self) -> None:
        """cluster-init assigns contiguous slot ranges covering all 16384 slots, each holding
        NUDGE_SHARDS / 3 shards (not the 12/6/6 of equal slot thirds): docs/scaling.md."""
        script = _compose()["services"]["cluster-init"]["command"][0]
        ranges = [
            (int(first), int(last))
            for first, last in re.findall(r"cluster addslotsrange (\d+) (\d+)", script)
        ]
        shards = int(_compose()["services"]["scheduler"]["environment"]["NUDGE_SHARDS"])
        slots = [shard_slot(s) for s in range(shards)]
        held = [sum(first <= slot <= last for slot in slots) for first, last in ranges]
        print(f"slot ranges {ranges}: shards per primary {held} (of {shards})")
        assert len(ranges) == 3
        assert ranges[0][0] == 0
        assert ranges[-1][1] == SLOTS - 1
        assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(ranges))
        assert held == [shards // 3] * 3
        assert ranges == balanced_ranges(shards, 3)
        assert "--cluster create" not in script

    def test_the_cluster_has_three_primaries_with_a_replica_each(self) -> None:
        """Six Redis nodes with AOF, formed with one replica per primary."""
        services = _compose()["services"]
        nodes = [name for name in services if name.startswith("redis-")]
        assert len(nodes) == 6
        assert all("--appendonly yes" in services[n]["command"][0] for n in nodes)
        script = services["cluster-init"]["command"][0]
        assert "for i in 3 4 5" in script
        assert 'cluster replicate "$$primary"' in script


class TestKubernetesExample:
    """The rest (schemas, security, exposure, KEDA) is in test_deploy_kubernetes.py."""

    @pytest.mark.parametrize("kind", ["scheduler", "notifier"])
    def test_each_deployment_is_configured_for_the_cluster(self, kind: str) -> None:
        """Both Deployments read the shared ConfigMap: cluster on, one shard count (secrets
        come as *_FILE paths, checked there)."""
        # NUDGE_PUBLIC_URL goes with the unsubscribe secrets, which come from a file.
        env = {
            k: v
            for k, v in _k8s_env(kind).items()
            if not k.endswith("_FILE") and k != "NUDGE_PUBLIC_URL"
        }
        _valid(kind, env)

    def test_probes_use_the_services_health_endpoints(self) -> None:
        """Readiness is /readyz and liveness /healthz on the NUDGE_OPERATOR_PORT."""
        for deployment in (d for d in _manifests() if d["kind"] == "Deployment"):
            [container] = deployment["spec"]["template"]["spec"]["containers"]
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
            ports = {p["name"]: p["containerPort"] for p in container["ports"]}
            assert ports["operator"] == int(_k8s_env("scheduler")["NUDGE_OPERATOR_PORT"])


class TestUnsubscribeIsConfigured:
    """Gmail and Yahoo require one-click unsubscribe of bulk senders: every shipped deployment
    of the notifier sets a public URL and unsubscribe secrets."""

    @pytest.mark.parametrize("compose", ["docker-compose.yml", "deploy/cluster/docker-compose.yml"])
    def test_compose_files_set_them(self, compose: str) -> None:
        """Both compose files set NUDGE_PUBLIC_URL and require NUDGE_UNSUBSCRIBE_SECRETS."""
        path = DEPLOY.parents[1] / compose
        env = yaml.safe_load(path.read_text())["services"]["notifier"]["environment"]
        settings = NotifierSettings.model_validate(
            {k.removeprefix("NUDGE_").lower(): v for k, v in _interpolated(env).items()
             if k.startswith("NUDGE_")}
        )  # fmt: skip
        assert settings.unsubscribe_enabled
        assert _REQUIRED.match(env["NUDGE_UNSUBSCRIBE_SECRETS"])

    def test_kubernetes_sets_them(self) -> None:
        """The notifier Deployment sets NUDGE_PUBLIC_URL and reads the unsubscribe secrets from
        a mounted Secret file (NUDGE_UNSUBSCRIBE_SECRETS_FILE)."""
        env = _k8s_env("notifier")
        assert env["NUDGE_PUBLIC_URL"].startswith("https://")
        assert env["NUDGE_UNSUBSCRIBE_SECRETS_FILE"].startswith("/run/secrets/")
