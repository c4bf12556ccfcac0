"""KubeRay manifests, the Prefect Kubernetes work-pool template, and their agreement."""

from __future__ import annotations

import re
import shlex
from typing import Any

import pytest
from opsdefs import INFRA, constraints, image, k8s_job_template, load_yaml_documents, prefect_config

K8S = INFRA / "k8s"
_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9}


def _bytes(quantity: str | int) -> int:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([A-Za-z]*)", str(quantity))
    assert match, quantity
    return int(float(match[1]) * _UNITS.get(match[2], 1))


def _by_kind(name: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for doc in load_yaml_documents(K8S / name):
        out.setdefault(doc["kind"], []).append(doc)
    return out


def _cluster_specs() -> list[tuple[str, dict[str, Any]]]:
    (cluster,) = _by_kind("raycluster.yaml")["RayCluster"]
    (job,) = _by_kind("rayjob-mine.yaml")["RayJob"]
    return [("RayCluster", cluster["spec"]), ("RayJob", job["spec"]["rayClusterSpec"])]


def test_every_manifest_parses_with_the_expected_kinds():
    expected = {
        "raycluster.yaml": {"RayCluster"},
        "rayjob-mine.yaml": {"RayJob"},
        "serviceaccounts.yaml": {"ServiceAccount"},
        "monitoring.yaml": {"PodMonitor"},
    }
    assert {p.name for p in K8S.glob("*.yaml")} == set(expected)
    for name, kinds in expected.items():
        docs = load_yaml_documents(K8S / name)
        assert {d["kind"] for d in docs} == kinds
        for doc in docs:
            assert doc["apiVersion"] and doc["metadata"]["name"]


@pytest.mark.parametrize(("kind", "spec"), _cluster_specs(), ids=["RayCluster", "RayJob"])
def test_ray_cluster_spec(kind, spec):
    assert spec["rayVersion"] == constraints()["ray"]
    assert spec["authOptions"]["mode"] == "token"
    assert spec["enableInTreeAutoscaling"] is True
    head = spec["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0", "the head runs no mining actors"
    (head_container,) = head["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in head_container["ports"]}
    assert ports["dashboard"] == 8265 and ports["gcs-server"] == 6379 and ports["metrics"] == 8080
    assert head["rayStartParams"]["metrics-export-port"] == "8080"
    gpu_groups = [g for g in spec["workerGroupSpecs"]
                  if g["template"]["spec"]["containers"][0]["resources"]["limits"].get("nvidia.com/gpu")]
    assert gpu_groups, "a GPU worker group"
    for group in gpu_groups:
        assert 0 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"] and group["maxReplicas"] >= 1
        assert any(t["key"] == "nvidia.com/gpu" for t in group["template"]["spec"]["tolerations"])
    for group in [head, *spec["workerGroupSpecs"]]:
        _check_pod(group)


def _check_pod(group: dict[str, Any]) -> None:
    """Image, non-root, and object store / shm / memory / /tmp/ray sizing of one group's pod."""
    pod = group["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == image("cuda")
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    volumes = {v["name"]: v["emptyDir"] for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    shm, tmp = volumes[mounts["/dev/shm"]], volumes[mounts["/tmp/ray"]]
    assert shm["medium"] == "Memory" and _bytes(tmp["sizeLimit"]) >= 10 * 2**30
    store = int(group["rayStartParams"]["object-store-memory"])
    memory = _bytes(container["resources"]["limits"]["memory"])
    assert store <= _bytes(shm["sizeLimit"]) < memory, "object store fits /dev/shm, which fits the pod"
    assert container["resources"]["limits"] == container["resources"]["requests"]
    names = {e["name"] for e in container.get("env", [])}
    assert not names & {"RAY_AUTH_TOKEN", "AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"}, \
        "secrets come from Secrets (authOptions, envFrom), never inline"


def test_rayjob_entrypoint_is_a_valid_mining_command():
    from unsamv2.cli import build_parser

    (job,) = _by_kind("rayjob-mine.yaml")["RayJob"]
    argv = shlex.split(job["spec"]["entrypoint"])
    assert argv[:2] == ["unsamv2", "mine"]
    args = build_parser().parse_args(argv[1:])
    assert args.backend == "ray" and args.ray_address == "auto" and args.device == "cuda"
    assert args.gpus_per_actor == 1 and args.backbone == "dinov2" and args.backbone_weights.startswith("s3://")
    assert job["spec"]["shutdownAfterJobFinishes"] is True and job["spec"]["backoffLimit"] >= 1


def test_pods_use_the_service_accounts_defined_here():
    accounts = {d["metadata"]["name"] for d in _by_kind("serviceaccounts.yaml")["ServiceAccount"]}
    for _, spec in _cluster_specs():
        for group in [spec["headGroupSpec"], *spec["workerGroupSpecs"]]:
            assert group["template"]["spec"]["serviceAccountName"] in accounts
    default_sa = k8s_job_template()["variables"]["properties"]["service_account_name"]["default"]
    assert default_sa in accounts


def test_podmonitors_scrape_ports_the_ray_pods_expose():
    (cluster,) = _by_kind("raycluster.yaml")["RayCluster"]
    head_ports = {p["name"] for p in cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["ports"]}
    worker_ports = {p["name"] for g in cluster["spec"]["workerGroupSpecs"]
                    for p in g["template"]["spec"]["containers"][0]["ports"]}
    monitors = {m["metadata"]["name"]: m["spec"] for m in _by_kind("monitoring.yaml")["PodMonitor"]}
    nodes, head = monitors["unsamv2-ray-nodes"], monitors["unsamv2-ray-head"]
    assert nodes["namespaceSelector"]["matchNames"] == [cluster["metadata"]["namespace"]]
    assert {e["port"] for e in nodes["podMetricsEndpoints"]} <= head_ports & worker_ports
    assert {e["port"] for e in head["podMetricsEndpoints"]} <= head_ports


# ---------------------------------------------------------------- Prefect Kubernetes work pool


@pytest.mark.integration
def test_base_job_template_is_accepted_by_prefect():
    from prefect.server.schemas.actions import WorkPoolCreate

    pool = WorkPoolCreate(name="unsamv2-k8s", type="kubernetes", base_job_template=k8s_job_template())
    assert pool.base_job_template["job_configuration"]["job_manifest"]["kind"] == "Job"


def _render(job_variables: dict[str, Any]) -> dict[str, Any]:
    """The Job manifest a Kubernetes worker would submit for these job variables."""
    from prefect.utilities.templating import apply_values

    template = k8s_job_template()
    defaults = {k: v["default"] for k, v in template["variables"]["properties"].items() if "default" in v}
    values = {**defaults, "name": "mine-run", "command": "prefect flow-run execute", "env": {}, "labels": {},
              **job_variables}
    return apply_values(template["job_configuration"], values)["job_manifest"]


@pytest.mark.integration
def test_cluster_deployment_renders_a_token_authenticated_driver_job():
    (cluster,) = _by_kind("raycluster.yaml")["RayCluster"]
    k8s = next(d for d in prefect_config()["deployments"] if d["work_pool"]["name"] == "unsamv2-k8s")
    manifest = _render(k8s["work_pool"]["job_variables"])
    pod = manifest["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == image("cpu") and manifest["metadata"]["namespace"] == "unsamv2"
    env = {e["name"]: e for e in container["env"]}
    assert env["RAY_AUTH_MODE"]["value"] == "token"
    secret_ref = env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert "value" not in env["RAY_AUTH_TOKEN"]
    assert secret_ref == {"name": cluster["spec"]["authOptions"]["secretName"], "key": "auth_token"}
    name, namespace = cluster["metadata"]["name"], cluster["metadata"]["namespace"]
    assert env["RAY_ADDRESS"]["value"] == f"{name}-head-svc.{namespace}.svc.cluster.local:6379"
    assert "nvidia.com/gpu" not in container["resources"].get("limits", {}), "the driver needs no GPU"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert manifest["spec"]["ttlSecondsAfterFinished"] == 3600
    # Ray Data needs its driver on a Ray node: the pod joins the cluster through the wrapper that
    # the Dockerfiles install, with a memory-backed /dev/shm larger than its object store.
    assert container["command"] == ["/usr/bin/tini", "--", "/usr/local/bin/unsamv2-ray-driver"]
    assert container["args"] == "prefect flow-run execute"
    volumes = {v["name"]: v["emptyDir"] for v in pod["volumes"]}
    shm = volumes[next(m["name"] for m in container["volumeMounts"] if m["mountPath"] == "/dev/shm")]
    assert int(env["UNSAMV2_DRIVER_OBJECT_STORE_BYTES"]["value"]) < _bytes(shm["sizeLimit"]) \
        < _bytes(container["resources"]["limits"]["memory"])
