"""The Kubernetes manifests (deploy/kubernetes) cannot be applied here (no cluster), so they are rendered
with kustomize (`kubectl kustomize`) and validated offline against the Kubernetes 1.32 schemas
(`kubernetes-validate`, strict: unknown fields are errors), then checked for what running Aftercare in
production needs from them."""

from __future__ import annotations

import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from aftercare.cli import _parser
from aftercare.settings import Settings
from tests.conftest import REPO

KUBERNETES = REPO / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.32"
RENDERINGS = ["base", "overlays/production"]


@cache
def rendered(folder: str) -> list[dict[str, Any]]:
    """The objects kustomize renders from `folder`."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl (with its built-in kustomize) is needed to render deploy/kubernetes")
    output = subprocess.run(
        [kubectl, "kustomize", str(KUBERNETES / folder)], check=True, capture_output=True, text=True
    ).stdout
    return [document for document in yaml.safe_load_all(output) if document]


def of_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {item["metadata"]["name"]: item for item in objects if item["kind"] == kind}


def pod_labels(deployment: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"]["labels"]
    return labels


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


@pytest.mark.parametrize("folder", RENDERINGS)
def test_every_object_is_valid_kubernetes(folder: str) -> None:
    objects = rendered(folder)
    assert objects
    for item in objects:
        kubernetes_validate.validate(item, KUBERNETES_VERSION, strict=True)


def test_the_validator_rejects_a_wrong_field() -> None:
    deployment = of_kind(rendered("base"), "Deployment")["aftercare-api"]
    broken = {**deployment, "spec": {**deployment["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("folder", RENDERINGS)
def test_the_api_worker_and_codec_server_run_commands_aftercare_has(folder: str) -> None:
    subcommands = set(_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    deployments = of_kind(rendered(folder), "Deployment")
    assert set(deployments) == {"aftercare-api", "aftercare-worker", "aftercare-codec"}
    for deployment in deployments.values():
        pod = deployment["spec"]["template"]["spec"]
        for container in pod["containers"] + pod.get("initContainers", []):
            assert container["command"][0] == "aftercare"
            assert container["command"][1] in subcommands
            assert container["image"].startswith("ghcr.io/aftercare-health/aftercare:")
            sources = {next(iter(source.values()))["name"] for source in container["envFrom"]}
            assert sources == {"aftercare-settings", "aftercare-secrets"}
    assert (
        deployments["aftercare-worker"]["spec"]["template"]["spec"]["containers"][0]["command"][1] == "worker"
    )


@pytest.mark.parametrize("folder", RENDERINGS)
def test_pods_are_probed_sized_and_unprivileged(folder: str) -> None:
    for name, deployment in of_kind(rendered(folder), "Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"] + pod.get("initContainers", []):
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
            assert "memory" in container["resources"]["limits"], name
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
        main = pod["containers"][0]
        assert "livenessProbe" in main, name
        if name != "aftercare-worker":
            assert main["readinessProbe"]["httpGet"]["path"] == "/healthz", name
    api = of_kind(rendered(folder), "Deployment")["aftercare-api"]["spec"]["template"]["spec"]
    assert [init["command"] for init in api["initContainers"]] == [["aftercare", "migrate"]]


@pytest.mark.parametrize("folder", RENDERINGS)
def test_services_budgets_and_autoscalers_point_at_real_pods(folder: str) -> None:
    objects = rendered(folder)
    deployments = of_kind(objects, "Deployment")
    for service in of_kind(objects, "Service").values():
        assert any(selects(service["spec"]["selector"], pod_labels(d)) for d in deployments.values())
    budgets = of_kind(objects, "PodDisruptionBudget").values()
    for name, deployment in deployments.items():
        assert any(selects(b["spec"]["selector"]["matchLabels"], pod_labels(deployment)) for b in budgets), (
            name
        )
    autoscalers = of_kind(objects, "HorizontalPodAutoscaler")
    assert autoscalers["aftercare-worker"]["spec"]["scaleTargetRef"]["name"] == "aftercare-worker"
    for autoscaler in autoscalers.values():
        assert autoscaler["spec"]["scaleTargetRef"]["name"] in deployments
        assert autoscaler["spec"]["minReplicas"] >= 2


@pytest.mark.parametrize("folder", RENDERINGS)
def test_every_setting_is_one_aftercare_reads_and_no_secret_is_in_the_manifests(folder: str) -> None:
    objects = rendered(folder)
    assert not of_kind(objects, "Secret"), "secrets are created by the operator, never committed"
    known = {name.upper() for name in Settings.model_fields}
    (settings,) = of_kind(objects, "ConfigMap").values()
    assert set(settings["data"]) <= known, set(settings["data"]) - known
    for key in settings["data"]:
        assert not any(word in key for word in ("PASSWORD", "TOKEN", "SECRET", "CODEC_KEYS", "API_KEY")), key
    assert settings["data"]["AFTERCARE_ENV"] == "production"


def test_the_production_overlay_gives_every_container_the_temporal_client_certificate() -> None:
    objects = rendered("overlays/production")
    data = of_kind(objects, "ConfigMap")["aftercare-settings"]["data"]
    for deployment in of_kind(objects, "Deployment").values():
        assert deployment["metadata"]["namespace"] == "aftercare"
        pod = deployment["spec"]["template"]["spec"]
        volume = next(v for v in pod["volumes"] if v["name"] == "temporal-tls")
        assert volume["secret"]["secretName"] == "aftercare-temporal-tls"
        (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "temporal-tls"]
        for setting in ("TEMPORAL_TLS_CERT_FILE", "TEMPORAL_TLS_KEY_FILE"):
            assert Path(data[setting]).parent == Path(mount["mountPath"])
    ingress = of_kind(objects, "Ingress")["aftercare"]
    backends = {
        p["path"]: p["backend"]["service"]["name"] for p in ingress["spec"]["rules"][0]["http"]["paths"]
    }
    assert backends == {"/codec": "aftercare-codec", "/": "aftercare-api"}
