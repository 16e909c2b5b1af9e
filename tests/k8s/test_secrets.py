"""The prod overlay hands the server its API keys and C2PA signing credentials from
Secrets, mounted the way the server reads them: read-only folders (never subPath, so a
changed keys Secret reaches running pods), settings naming files in those folders, and
files the server's own loaders accept. Dev needs no Secret; no overlay turns on server
TLS under the kubelet's plaintext gRPC probes."""

from __future__ import annotations

import os
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from k8s_paths import K8S, OVERLAYS, render_prod_with

from tryon.deploy.manifests import Manifest, find
from tryon.provenance.certificates import create_test_authority
from tryon.provenance.manifest import load_credentials
from tryon.server.auth import KeyRing, add_key, read_keys
from tryon.server.errors import UnauthenticatedError
from tryon.server.settings import ServerSettings

PROD = K8S / "overlays/prod"
# Each Secret the prod server reads: its template, and the settings naming its files.
SECRETS = {
    "tryon-api-keys": ("api-keys-secret.template.yaml", ("TRYON_API_KEYS_FILE",)),
    "tryon-c2pa": ("c2pa-secret.template.yaml", ("TRYON_C2PA_CERT", "TRYON_C2PA_KEY")),
}
WITH_SECRETS = ("prod", "gpu")  # gpu is prod on other nodes


def pod_spec(objects: list[Manifest]) -> dict:
    return find(objects, "Deployment", "tryon")["spec"]["template"]["spec"]


def server_container(objects: list[Manifest]) -> dict:
    return pod_spec(objects)["containers"][0]


def template(secret: str) -> Manifest:
    return yaml.safe_load((PROD / SECRETS[secret][0]).read_text())


def secret_keys(manifest: Manifest) -> set[str]:
    return set(manifest.get("stringData", {})) | set(manifest.get("data", {}))


def secret_mount(objects: list[Manifest], secret: str) -> tuple[dict, dict]:
    """(volume, the server container's mount of it) for the Secret named `secret`."""
    volumes = [
        v for v in pod_spec(objects)["volumes"] if v.get("secret", {}).get("secretName") == secret
    ]
    assert len(volumes) == 1, f"expected one volume of the Secret {secret}, found {volumes}"
    mounts = [
        m for m in server_container(objects)["volumeMounts"] if m["name"] == volumes[0]["name"]
    ]
    assert len(mounts) == 1, f"the server container mounts {secret} {len(mounts)} times"
    return volumes[0], mounts[0]


def server_environment(objects: list[Manifest]) -> dict[str, str]:
    """What the server container's TRYON_* variables say: the ConfigMap, then its own
    `env` values (which win); values from secretKeyRef are left out."""
    container = server_container(objects)
    name = container["envFrom"][0]["configMapRef"]["name"]
    environ = dict(find(objects, "ConfigMap", name)["data"])
    environ.update({e["name"]: e["value"] for e in container.get("env", []) if "value" in e})
    return environ


def write_secret_folder(folder: Path, files: dict[str, bytes], version: str) -> None:
    """Lay `files` out the way the kubelet fills a Secret volume: a timestamped folder,
    `..data` pointing at it, one symlink per key through `..data`; an existing folder is
    updated the way the kubelet updates it (the `..data` symlink swapped atomically)."""
    folder.mkdir(parents=True, exist_ok=True)
    payload = folder / f"..{version}"
    payload.mkdir()
    for name, content in files.items():
        (payload / name).write_bytes(content)
    swap = folder / "..data_tmp"
    swap.symlink_to(payload.name)
    old = (folder / "..data").resolve() if (folder / "..data").exists() else None
    os.replace(swap, folder / "..data")
    for name in files:
        if not (folder / name).is_symlink():
            (folder / name).symlink_to(f"..data/{name}")
    if old is not None:
        for stale in old.iterdir():
            stale.unlink()
        old.rmdir()


def test_secret_templates_are_valid_secrets_kept_out_of_the_kustomization(rendered, tmp_path):
    objects = rendered["prod"]
    namespace = find(objects, "Namespace")["metadata"]["name"]
    kustomization = yaml.safe_load((PROD / "kustomization.yaml").read_text())
    used = set(kustomization.get("resources", [])) | {
        patch["path"] for patch in kustomization.get("patches", []) if "path" in patch
    }
    for secret, (filename, _settings) in SECRETS.items():
        manifest = template(secret)
        kubernetes_validate.validate(manifest, "1.30.0", strict=True)
        assert manifest["metadata"] == {"name": secret, "namespace": namespace}
        # An apply of the overlay must never overwrite the real Secret with the template.
        assert filename not in used
    assert not [o for o in objects if o["kind"] == "Secret"]
    # The keys template is a keys file as `tryon keys add` writes them, holding no key:
    # applied unchanged, it locks every caller out rather than letting every caller in.
    ((name, text),) = template("tryon-api-keys")["stringData"].items()
    (tmp_path / name).write_text(text)
    assert read_keys(tmp_path / name) == []


@pytest.mark.parametrize("overlay", WITH_SECRETS)
def test_each_secret_is_mounted_read_only_as_a_folder(rendered, overlay):
    objects = rendered[overlay]
    assert pod_spec(objects)["securityContext"]["fsGroup"] == 10001  # the server's group
    for secret in SECRETS:
        volume, mount = secret_mount(objects, secret)
        assert mount["readOnly"] is True, secret
        # A subPath mount is a bind of the file found at start: the kubelet never updates
        # it, so added and revoked keys would not reach the pod until it restarts.
        assert "subPath" not in mount and "subPathExpr" not in mount, secret
        # Readable by the pod's group (fsGroup), not by every user of the node.
        mode = volume["secret"].get("defaultMode", 0o644)
        assert mode & 0o007 == 0, f"{secret}: defaultMode {mode:o} is world-readable"
        assert mode & 0o040, f"{secret}: defaultMode {mode:o} hides the files from the group"
        assert volume["secret"].get("optional") is not True, secret  # missing: no start


@pytest.mark.parametrize("overlay", WITH_SECRETS)
def test_each_file_setting_names_a_key_of_its_secret_inside_the_mount(rendered, overlay):
    objects = rendered[overlay]
    env = {e["name"]: e for e in server_container(objects).get("env", [])}
    known = {"TRYON_" + name.upper() for name in ServerSettings.__dataclass_fields__}
    assert set(env) <= known, set(env) - known
    for secret, (_filename, settings) in SECRETS.items():
        volume, mount = secret_mount(objects, secret)
        items = {i["path"]: i["key"] for i in volume["secret"].get("items", [])}
        for setting in settings:
            path = Path(env[setting]["value"])
            assert path.parent == Path(mount["mountPath"]), f"{setting}={path} is not in {mount}"
            key = items.get(path.name, path.name)
            assert key in secret_keys(template(secret)), f"{setting}: {secret} has no key {key}"


def test_the_server_loads_the_files_the_prod_secrets_mount(rendered, tmp_path):
    objects = rendered["prod"]
    key_file = tmp_path / "made" / "keys.json"
    key = add_key(key_file, "shop-a", rate_per_s=20, burst=40)
    authority = create_test_authority()
    contents = {
        "tryon-api-keys": {"keys.json": key_file.read_bytes()},
        "tryon-c2pa": {
            "cert.pem": authority.credentials.certificate_chain,
            "key.pem": authority.credentials.private_key,
        },
    }
    environ = server_environment(objects)
    for secret, files in contents.items():
        assert set(files) == secret_keys(template(secret)), secret
        _volume, mount = secret_mount(objects, secret)
        folder = tmp_path / "pod" / mount["mountPath"].lstrip("/")
        write_secret_folder(folder, files, "2026_01_31_12_00_00.1")
        prefix = mount["mountPath"].rstrip("/") + "/"
        environ = {
            name: str(folder / value[len(prefix) :]) if value.startswith(prefix) else value
            for name, value in environ.items()
        }

    settings = ServerSettings.load(environ)
    assert settings.api_keys_file and settings.c2pa_cert and settings.c2pa_key
    assert settings.c2pa_required is True
    ring = KeyRing(settings.api_keys_file)
    assert ring.authenticate([("authorization", f"Bearer {key}")]).name == "shop-a"
    credentials = load_credentials(
        settings.c2pa_cert, settings.c2pa_key, required=settings.c2pa_required
    )
    assert credentials is not None
    assert credentials.certificate_chain == authority.credentials.certificate_chain


def test_a_changed_keys_secret_reaches_the_running_server(rendered, tmp_path):
    """The kubelet's update of a Secret folder, as the server sees it through the path
    the prod overlay sets."""
    objects = rendered["prod"]
    _volume, mount = secret_mount(objects, "tryon-api-keys")
    name = Path(server_environment(objects)["TRYON_API_KEYS_FILE"]).name
    made = tmp_path / "made" / name
    first = add_key(made, "shop-a")
    folder = tmp_path / "pod" / mount["mountPath"].lstrip("/")
    write_secret_folder(folder, {name: made.read_bytes()}, "2026_01_31_12_00_00.1")
    ring = KeyRing(folder / name, reload_s=0)
    second = add_key(made, "shop-b")
    with pytest.raises(UnauthenticatedError):
        ring.authenticate([("authorization", f"Bearer {second}")])

    write_secret_folder(folder, {name: made.read_bytes()}, "2026_01_31_12_01_00.2")
    assert ring.authenticate([("authorization", f"Bearer {second}")]).name == "shop-b"
    assert ring.authenticate([("authorization", f"Bearer {first}")]).name == "shop-a"


def test_dev_runs_without_any_secret(rendered):
    objects = rendered["dev"]
    assert not [v for v in pod_spec(objects)["volumes"] if "secret" in v]
    assert not [e for e in server_container(objects).get("env", []) if "valueFrom" in e]
    settings = ServerSettings.load(server_environment(objects))
    assert settings.api_keys_file is None  # open: no keys to make on a laptop cluster
    assert (settings.c2pa_cert, settings.c2pa_key, settings.c2pa_required) == (None, None, False)
    assert settings.tls_cert is None


def probes_keep_off_a_tls_port(objects: list[Manifest]) -> None:
    """The kubelet's gRPC probes speak plaintext only (no TLS in Kubernetes 1.30; 1.37's
    alpha `mode: TLS` presents no client certificate): they ask the server's plaintext
    health port, never the API port that TLS may be turned on for."""
    container = server_container(objects)
    settings = ServerSettings.load(server_environment(objects))
    ports = {
        container[p]["grpc"]["port"] for p in ("startupProbe", "readinessProbe", "livenessProbe")
    }
    assert ports == {settings.health_port} and settings.health_port not in (-1, settings.port)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlays_leave_server_tls_off_and_mount_only_checked_secrets(rendered, overlay):
    """TLS in the pods is the server-tls component's choice (a mesh or an ingress does it
    otherwise); every Secret a pod mounts is one whose files the tests here check."""
    settings = ServerSettings.load(server_environment(rendered[overlay]))
    assert (settings.tls_cert, settings.tls_key, settings.tls_client_ca) == (None, None, None)
    probes_keep_off_a_tls_port(rendered[overlay])
    mounted_secrets = {
        v["secret"]["secretName"] for v in pod_spec(rendered[overlay])["volumes"] if "secret" in v
    }
    assert mounted_secrets <= set(SECRETS)


def test_the_server_tls_component_serves_tls_from_its_secret_under_plaintext_probes(tmp_path):
    """prod plus components/server-tls: the server reads its certificate and key from the
    mounted tryon-server-tls Secret (its template a valid kubernetes.io/tls Secret with
    those keys), and the probes ask the plaintext health port."""
    objects = render_prod_with("server-tls", tmp_path / "prod-tls")
    kubernetes_validate.validate(find(objects, "Deployment", "tryon"), "1.30.0", strict=True)
    settings = ServerSettings.load(server_environment(objects))
    volume, mount = secret_mount(objects, "tryon-server-tls")
    assert mount["readOnly"] is True and volume["secret"]["defaultMode"] == 0o440
    template_file = K8S / "components/server-tls/server-tls-secret.template.yaml"
    secret = yaml.safe_load(template_file.read_text())
    kubernetes_validate.validate(secret, "1.30.0", strict=True)
    assert secret["type"] == "kubernetes.io/tls"
    for path in (settings.tls_cert, settings.tls_key):
        assert Path(path).parent == Path(mount["mountPath"])
        assert Path(path).name in secret_keys(secret)
    probes_keep_off_a_tls_port(objects)
    # No Service still tells gateways and meshes that the now-TLS port speaks h2c.
    for service in (o for o in objects if o["kind"] == "Service"):
        assert all(
            port.get("appProtocol") != "kubernetes.io/h2c" for port in service["spec"]["ports"]
        )
