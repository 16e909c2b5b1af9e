"""The overlays render, validate strictly against Kubernetes' schemas, and mean what the
server needs: probes on its health names, grace beyond its drain, restricted pods, an
HPA on a metric it really exports."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from k8s_paths import K8S, OVERLAYS, render_prod_with

from tryon.deploy.manifests import Manifest, find
from tryon.server.app import SERVICE_NAME
from tryon.server.settings import ServerSettings
from tryon.server.watchdog import LIVENESS_SERVICE

VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
# Custom resources: the validator bundles no schema for them; test_custom_resources
# checks what they must say.
CUSTOM_KINDS = {"ServiceMonitor"}
PREFIX_S = 5  # the preStop sleep


def pod_templates(objects: list[Manifest]) -> list[tuple[str, dict]]:
    """(owner, pod spec) of every Deployment and Job."""
    return [
        (f"{o['kind']}/{o['metadata']['name']}", o["spec"]["template"]["spec"])
        for o in objects
        if o["kind"] in ("Deployment", "Job")
    ]


def server_container(objects: list[Manifest]) -> dict:
    return find(objects, "Deployment", "tryon")["spec"]["template"]["spec"]["containers"][0]


def server_config(objects: list[Manifest]) -> dict[str, str]:
    """The TRYON_* variables the server container gets from its ConfigMap."""
    container = server_container(objects)
    name = container["envFrom"][0]["configMapRef"]["name"]
    return find(objects, "ConfigMap", name)["data"]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_validates_strictly(rendered, overlay, version):
    kinds = set()
    for manifest in rendered[overlay]:
        kinds.add(manifest["kind"])
        if manifest["kind"] not in CUSTOM_KINDS:
            kubernetes_validate.validate(manifest, version, strict=True)
    assert {"Deployment", "Service", "ConfigMap", "PodDisruptionBudget"} <= kinds


def test_strict_validation_catches_a_misspelt_field(rendered):
    deployment = copy.deepcopy(find(rendered["prod"], "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSIONS[0], strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_images_name_a_registry_and_a_pinned_tag(rendered, overlay):
    for owner, spec in pod_templates(rendered[overlay]):
        for container in spec["containers"] + spec.get("initContainers", []):
            registry, _, rest = container["image"].partition("/")
            assert "." in registry and rest, f"{owner}: {container['image']} names no registry"
            assert re.fullmatch(r"[\w./-]+:[\w.-]+", container["image"]), owner
            assert not container["image"].endswith(":latest"), owner


def test_gpu_overlay_overrides_the_image_tag_with_kustomize(rendered):
    assert server_container(rendered["gpu"])["image"].endswith(":0.1.0-cu124")
    assert server_container(rendered["prod"])["image"].endswith(":0.1.0")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_ask_the_plaintext_health_port_for_the_servers_health_names(rendered, overlay):
    """The probes go to the port the server serves health alone on (TRYON_HEALTH_PORT), not
    to the API port, so that TLS on the API port (components/server-tls) cannot fail them."""
    container = server_container(rendered[overlay])
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    settings = ServerSettings.load(server_config(rendered[overlay]))
    assert ports["grpc"] == settings.port
    assert ports["health"] == settings.health_port != settings.port
    for probe in ("startupProbe", "readinessProbe"):
        assert container[probe]["grpc"] == {"port": ports["health"], "service": SERVICE_NAME}
    liveness = {"port": ports["health"], "service": LIVENESS_SERVICE}
    assert container["livenessProbe"]["grpc"] == liveness
    # One slow answer under CPU load does not take the pod out.
    assert container["readinessProbe"]["timeoutSeconds"] >= 2
    assert container["readinessProbe"]["failureThreshold"] >= 2
    # A stuck loop is caught: the probe times out before the kubelet gives up on it.
    stall = float(server_config(rendered[overlay])["TRYON_STALL_S"])
    liveness = container["livenessProbe"]
    assert stall < liveness["periodSeconds"] * liveness["failureThreshold"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_termination_grace_exceeds_prestop_drain_and_grace(rendered, overlay):
    config = server_config(rendered[overlay])
    container = server_container(rendered[overlay])
    assert container["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", str(PREFIX_S)]
    needed = PREFIX_S + float(config["TRYON_DRAIN_S"]) + float(config["TRYON_GRACE_S"])
    pod = find(rendered[overlay], "Deployment")["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] > needed


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_setting_in_the_config_map_is_one_the_server_reads(rendered, overlay):
    config = server_config(rendered[overlay])
    settings = ServerSettings.load(config)  # a malformed value raises here
    known = {"TRYON_" + name.upper() for name in ServerSettings.__dataclass_fields__}
    assert set(config) <= known, set(config) - known
    # The batch wait the docs removed stays removed.
    assert "TRYON_MAX_WAIT_MS" not in config
    assert settings.max_wait_ms == ServerSettings().max_wait_ms
    env = {e["name"] for e in server_container(rendered[overlay]).get("env", [])}
    assert "TRYON_MAX_WAIT_MS" not in env


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_meet_the_restricted_pod_security_standard(rendered, overlay):
    for owner, spec in pod_templates(rendered[overlay]):
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, owner
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, owner
        assert spec["automountServiceAccountToken"] is False, owner
        assert not any(k in spec for k in ("hostNetwork", "hostPID", "hostIPC")), owner
        mounts_needed = set()
        for container in spec["containers"] + spec.get("initContainers", []):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, owner
            assert context["capabilities"] == {"drop": ["ALL"]}, owner
            assert context["readOnlyRootFilesystem"] is True, owner
            assert context.get("privileged") is not True, owner
            mounts_needed |= {m["name"] for m in container.get("volumeMounts", [])}
            assert "/tmp" in {m["mountPath"] for m in container["volumeMounts"]}, owner
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert mounts_needed <= set(volumes), owner
        assert "emptyDir" in volumes["tmp"], owner
    namespaces = [o for o in rendered[overlay] if o["kind"] == "Namespace"]
    for namespace in namespaces:
        assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == (
            "restricted"
        )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_pdb_and_network_policy_select_the_server_pods(rendered, overlay):
    objects = rendered[overlay]
    deployment = find(objects, "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    ports = {p["name"]: p["containerPort"] for p in server_container(objects)["ports"]}

    def selects(selector: dict) -> bool:
        return selector.items() <= labels.items()

    headless = find(objects, "Service", "tryon-headless")
    cluster_ip = find(objects, "Service", "tryon")
    assert headless["spec"]["clusterIP"] == "None"  # one DNS record per pod: round robin
    for service in (headless, cluster_ip):
        assert selects(service["spec"]["selector"])
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports
    pdb = find(objects, "PodDisruptionBudget")
    assert selects(pdb["spec"]["selector"]["matchLabels"])
    assert pdb["spec"]["maxUnavailable"] == 1 and "minAvailable" not in pdb["spec"]
    policy = find(objects, "NetworkPolicy")
    assert selects(policy["spec"]["podSelector"]["matchLabels"])
    allowed = {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}
    # The health port is for the kubelet's probes, which a NetworkPolicy does not stop.
    assert allowed == set(ports.values()) - {ports["health"]}
    spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in spread} >= {"topology.kubernetes.io/zone"}
    assert all(selects(c["labelSelector"]["matchLabels"]) for c in spread)
    # A rollout never lowers the serving replicas.
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_prod_reads_the_database_url_from_the_secret_and_migrates_with_a_job(rendered):
    objects = rendered["prod"]
    job = find(objects, "Job")
    server = server_container(objects)
    migrate = job["spec"]["template"]["spec"]["containers"][0]
    assert migrate["args"] == ["db", "upgrade"]
    assert migrate["image"] == server["image"]
    url = {e["name"]: e for e in server["env"]}["TRYON_DATABASE_URL"]
    assert {e["name"]: e for e in migrate["env"]}["TRYON_DATABASE_URL"] == url
    ref = url["valueFrom"]["secretKeyRef"]
    template = yaml.safe_load((K8S / "overlays/prod/database-secret.template.yaml").read_text())
    kubernetes_validate.validate(template, VERSIONS[0], strict=True)
    assert template["metadata"]["name"] == ref["name"]
    assert template["stringData"][ref["key"]].startswith("postgresql://")
    assert template["metadata"]["namespace"] == job["metadata"]["namespace"]
    # The HPA owns the replica count.
    assert "replicas" not in find(objects, "Deployment")["spec"]
    # The migration pods are not server pods: no Service sends them calls.
    job_labels = job["spec"]["template"]["metadata"]["labels"]
    assert not find(objects, "Service", "tryon")["spec"]["selector"].items() <= job_labels.items()


def test_dev_runs_one_replica_that_migrates_its_own_sqlite_file(rendered):
    objects = rendered["dev"]
    deployment = find(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    (init,) = deployment["spec"]["template"]["spec"]["initContainers"]
    assert init["args"] == ["db", "upgrade"]
    assert server_config(objects)["TRYON_DATABASE_URL"] == "sqlite:////data/tryon.db"
    data_mounts = {
        m["mountPath"]
        for c in (init, server_container(objects))
        for m in c["volumeMounts"]
        if m["name"] == "data"
    }
    assert data_mounts == {"/data"}
    assert not [o for o in objects if o["kind"] in ("Job", "HorizontalPodAutoscaler")]


def test_gpu_overlay_asks_for_a_gpu_on_gpu_nodes(rendered):
    objects = rendered["gpu"]
    spec = find(objects, "Deployment")["spec"]["template"]["spec"]
    resources = spec["containers"][0]["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == 1
    assert spec["nodeSelector"] and spec["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert server_config(objects)["TRYON_DEVICE"] == "cuda"


def test_store_weights_component_mounts_the_folder_the_server_loads(tmp_path):
    objects = render_prod_with("store-weights", tmp_path / "store")
    for manifest in objects:
        if manifest["kind"] not in CUSTOM_KINDS:
            kubernetes_validate.validate(manifest, VERSIONS[0], strict=True)
    weights = Path(server_config(objects)["TRYON_WEIGHTS"])
    mounts = {m["name"]: m for m in server_container(objects)["volumeMounts"]}
    assert mounts["weights"]["readOnly"] is True
    assert weights.is_relative_to(mounts["weights"]["mountPath"])
    claim = find(objects, "PersistentVolumeClaim")
    volume = {
        v["name"]: v for v in find(objects, "Deployment")["spec"]["template"]["spec"]["volumes"]
    }
    assert volume["weights"]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]


@pytest.mark.parametrize("overlay", ("prod", "gpu"))
def test_hpa_scales_the_deployment_on_a_metric_the_server_exports(rendered, overlay, metrics_page):
    objects = rendered[overlay]
    hpa = find(objects, "HorizontalPodAutoscaler")
    deployment = find(objects, "Deployment")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    pods_metrics = [m["pods"] for m in hpa["spec"]["metrics"] if m["type"] == "Pods"]
    (pods_metric,) = pods_metrics
    name = pods_metric["metric"]["name"]
    assert re.search(rf"^{name} 0\.0$", metrics_page, re.MULTILINE), f"{name} not exported"
    assert f"# TYPE {name} gauge" in metrics_page
    cpu = [m for m in hpa["spec"]["metrics"] if m["type"] == "Resource"]
    assert cpu and cpu[0]["resource"]["name"] == "cpu"
    behavior = hpa["spec"]["behavior"]
    assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 0
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] >= 300


def test_the_adapter_rule_serves_the_hpa_metric(rendered, metrics_page):
    adapter = yaml.safe_load((K8S / "monitoring/prometheus-adapter.yaml").read_text())
    kubernetes_validate.validate(adapter, VERSIONS[0], strict=True)
    (rule,) = yaml.safe_load(adapter["data"]["config.yaml"])["rules"]
    hpa = find(rendered["prod"], "HorizontalPodAutoscaler")
    (wanted,) = [m["pods"]["metric"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "Pods"]
    series = re.match(r"(\w+)\{", rule["seriesQuery"]).group(1)
    assert series in metrics_page
    assert re.fullmatch(rule["name"]["matches"], series)
    assert rule["name"]["as"] == wanted
    assert set(rule["resources"]["overrides"]) == {"namespace", "pod"}
    assert "<<.GroupBy>>" in rule["metricsQuery"]


def test_custom_resources(rendered):
    """ServiceMonitor: no schema is bundled, so check what Prometheus needs of it."""
    objects = rendered["prod"]
    monitor = find(objects, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    selected = [
        s
        for s in objects
        if s["kind"] == "Service"
        and monitor["spec"]["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()
    ]
    assert [s["metadata"]["name"] for s in selected] == ["tryon"]  # scraped once per pod
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in selected[0]["spec"]["ports"]}
    assert set(monitor["spec"]) <= {"selector", "endpoints", "namespaceSelector", "jobLabel"}
