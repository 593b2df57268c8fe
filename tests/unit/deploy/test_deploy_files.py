"""The deploy files are valid and agree with each other and with escucha's configuration.

No Docker engine or cluster runs here, so nothing is started: docker-compose (Debian's v1,
installed by `make system-deps`) checks the compose file, kubernetes-validate checks every
manifest against the Kubernetes API's JSON schemas, and escucha's own config loader checks
the configuration both ship.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from streams.config.settings import load_settings

REPO = Path(__file__).resolve().parents[3]
DEPLOY = REPO / "deploy"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
K8S_DIR = DEPLOY / "kubernetes"
# The oldest Kubernetes the manifests must work on; the schemas come with kubernetes-validate.
K8S_VERSION = "1.30"
# Kinds kubernetes-validate has no schema for (CRDs, kustomize): checked by hand below.
NO_SCHEMA = {"Kustomization", "ServiceMonitor"}
WORKERS = ("escucha-worker-1", "escucha-worker-2")
PORT = 6066
_DEFAULTED = re.compile(r"^\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*):-(?P<default>[^}]*)\}$")


def _compose() -> dict[str, Any]:
    # safe_load resolves the x-escucha-worker anchor and its `<<:` merges like compose does.
    data: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return data


def _environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as compose sees it with no variables set in the shell."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    out = {}
    for key, value in env.items():
        value = "" if value is None else str(value)
        m = _DEFAULTED.match(value)
        out[key] = m.group("default") if m else value
    return out


def _bind_sources() -> list[tuple[str, Path]]:
    """(service, host path) of every bind mount in the compose file, resolved like compose."""
    found = []
    for name, service in _compose()["services"].items():
        for volume in service.get("volumes") or []:
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source")
            if source and source.startswith((".", "/")):
                found.append((name, (COMPOSE_FILE.parent / source).resolve()))
    return found


def _manifests() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted(K8S_DIR.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc:
                docs.append((path.name, doc))
    return docs


def _one(kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for _, d in _manifests()
             if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No ESCUCHA_* from the machine running the tests leaks into a config check."""
    for key in list(os.environ):
        if key.startswith("ESCUCHA_"):
            monkeypatch.delenv(key)
    return monkeypatch


# ---------------------------------------------------------------- docker-compose


def test_compose_file_passes_docker_compose_config() -> None:
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.fail("docker-compose is not on PATH: run `make system-deps` (Debian's "
                    "docker-compose validates the file without a Docker engine)")
    # The file must work with nothing set in the shell: every variable has a default.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ESCUCHA_", "GRAFANA_", "TORCH_", "COMPOSE_", "PYTHON"))}
    proc = subprocess.run([exe, "-f", str(COMPOSE_FILE), "config", "-q"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, f"docker-compose config failed:\n{proc.stderr}"
    assert "variable is not set" not in proc.stderr, proc.stderr


def test_compose_has_kafka_in_kraft_mode_with_a_healthcheck() -> None:
    kafka = _compose()["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:3.9.")
    env = _environment(kafka)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_ADVERTISED_LISTENERS"].startswith("PLAINTEXT://kafka:9092")
    assert "test" in kafka["healthcheck"]


@pytest.mark.parametrize("name", WORKERS)
def test_compose_workers_run_escucha_against_the_compose_kafka(name: str) -> None:
    services = _compose()["services"]
    worker = services[name]
    assert worker["command"] == ["worker"]
    build = worker["build"]
    assert (COMPOSE_FILE.parent / build["context"] / build["dockerfile"]).resolve() == (
        DEPLOY / "Dockerfile")
    env = _environment(worker)
    assert env["ESCUCHA_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert env["ESCUCHA_CONFIG"] == "/etc/escucha/escucha.yaml"
    assert env["ESCUCHA_WEB__HOST"] == "0.0.0.0"
    assert worker["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert "/readyz" in " ".join(worker["healthcheck"]["test"])
    mounts = {v.split(":")[1]: v for v in worker["volumes"]}
    assert mounts["/etc/escucha/escucha.yaml"].endswith(":ro")
    assert "/var/lib/escucha" in mounts


def test_compose_workers_share_one_link_secret() -> None:
    # Each would otherwise generate its own, and refuse the ack links the other signed.
    secrets = {_environment(_compose()["services"][w]).get("ESCUCHA_API__LINK_SECRET")
               for w in WORKERS}
    assert len(secrets) == 1
    assert None not in secrets


def test_compose_config_file_is_a_valid_escucha_config(clean_env: pytest.MonkeyPatch) -> None:
    worker = _compose()["services"][WORKERS[0]]
    for key, value in _environment(worker).items():
        clean_env.setenv(key, value)
    settings = load_settings(DEPLOY / "escucha.compose.yaml")
    assert [w.id for w in settings.watches] == ["acme", "globex"]
    assert settings.notifiers.console.enabled
    assert settings.kafka.bootstrap == "kafka:9092"
    assert settings.api.public_url.startswith("http")
    assert settings.web.port == PORT


def test_compose_workers_share_one_postgresql_store_whose_password_is_a_variable(
        clean_env: pytest.MonkeyPatch) -> None:
    services = _compose()["services"]
    db = services["store-db"]
    assert db["image"].startswith("postgres:")
    assert "pg_isready" in db["healthcheck"]["test"]
    assert any(v.endswith(":/var/lib/postgresql/data") for v in db["volumes"])
    db_env = db["environment"]
    # The password is never written in the file: both sides read one shell/.env variable.
    assert db_env["POSTGRES_PASSWORD"].startswith("${ESCUCHA_STORE_DB_PASSWORD:-")
    for name in WORKERS:
        worker = services[name]
        assert worker["depends_on"]["store-db"]["condition"] == "service_healthy"
        raw = worker["environment"]["ESCUCHA_STORE__URL"]
        assert f":{db_env['POSTGRES_PASSWORD']}@" in raw
        url = raw.replace(db_env["POSTGRES_PASSWORD"], _environment(db)["POSTGRES_PASSWORD"])
        clean_env.setenv("ESCUCHA_STORE__URL", url)
        settings = load_settings(DEPLOY / "escucha.compose.yaml")
        parts = urlsplit(settings.store.postgres_url() or "")
        assert (parts.hostname, parts.port) == ("store-db", 5432)
        assert (parts.username, parts.path) == (db_env["POSTGRES_USER"],
                                               f"/{db_env['POSTGRES_DB']}")
        assert parts.password == _environment(db)["POSTGRES_PASSWORD"]


@pytest.mark.parametrize(("service", "source"), _bind_sources(),
                         ids=[f"{s}:{p.relative_to(REPO)}" for s, p in _bind_sources()])
def test_compose_bind_mounts_exist_in_the_repository(service: str, source: Path) -> None:
    assert source.exists(), f"{service} mounts {source.relative_to(REPO)}, which is missing"


def test_prometheus_scrapes_every_compose_worker() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text("utf-8"))
    targets = {t for job in config["scrape_configs"]
               for sc in job.get("static_configs", []) for t in sc["targets"]}
    assert {f"{w}:{PORT}" for w in WORKERS} <= targets


# ---------------------------------------------------------------- Kubernetes


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text("utf-8"))
    files = {p.name for p in K8S_DIR.glob("*.y*ml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files
    assert kustomization["namespace"] == "escucha"


@pytest.mark.parametrize(
    ("filename", "manifest"),
    [(f, d) for f, d in _manifests() if d["kind"] not in NO_SCHEMA],
    ids=[f"{f}:{d['kind']}" for f, d in _manifests() if d["kind"] not in NO_SCHEMA],
)
def test_manifest_matches_the_kubernetes_schema(filename: str, manifest: dict[str, Any]) -> None:
    try:
        # strict: unknown fields (a typo, a field in the wrong place) are errors too.
        kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = ".".join(str(p) for p in exc.path)
        pytest.fail(f"{filename}: {where}: {exc.message}")


def test_every_namespaced_resource_is_in_the_escucha_namespace() -> None:
    assert _one("Namespace")["metadata"]["name"] == "escucha"
    for filename, doc in _manifests():
        if doc["kind"] not in {"Namespace", "Kustomization"}:
            assert doc["metadata"].get("namespace") == "escucha", filename


def test_statefulset_runs_the_workers_as_specified() -> None:
    sts = _one("StatefulSet", "escucha-worker")
    spec = sts["spec"]
    assert spec["replicas"] == 2
    assert spec["podManagementPolicy"] == "Parallel"
    pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    assert pod["terminationGracePeriodSeconds"] == 30
    # Else Kubernetes injects ESCUCHA_WEB_PORT=tcp://… for the escucha-web Service, which
    # escucha reads as web.port and refuses.
    assert pod["enableServiceLinks"] is False
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["args"] == ["worker"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["resources"] == {"requests": {"cpu": "1", "memory": "1Gi"},
                                      "limits": {"memory": "2Gi"}}
    assert container["ports"] == [{"name": "http", "containerPort": PORT, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}

    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    claims = {c["metadata"]["name"] for c in spec["volumeClaimTemplates"]}
    assert mounts["/var/lib/escucha"] in claims

    config = _one("ConfigMap", "escucha-config")
    assert volumes[mounts["/etc/escucha"]]["configMap"]["name"] == "escucha-config"
    env = {e["name"]: e for e in container["env"]}
    assert env["ESCUCHA_CONFIG"]["value"] == "/etc/escucha/escucha.yaml"
    ref = env["ESCUCHA_KAFKA_BOOTSTRAP"]["valueFrom"]["configMapKeyRef"]
    assert ref["name"] == "escucha-config"
    assert ref["key"] in config["data"]
    assert {"secretRef": {"name": "escucha-secrets"}} in container["envFrom"]
    _one("Secret", "escucha-secrets")

    headless = _one("Service", spec["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["selector"].items() <= labels.items()


def test_web_service_and_pdb_select_the_workers() -> None:
    labels = _one("StatefulSet", "escucha-worker")["spec"]["template"]["metadata"]["labels"]
    web = _one("Service", "escucha-web")["spec"]
    assert web.get("type", "ClusterIP") == "ClusterIP"
    assert web["selector"].items() <= labels.items()
    assert web["ports"][0]["name"] == "http"
    assert web["ports"][0]["port"] == PORT
    pdb = _one("PodDisruptionBudget")["spec"]
    assert pdb["minAvailable"] == 1
    assert pdb["selector"]["matchLabels"].items() <= labels.items()


def test_servicemonitor_scrapes_metrics_on_the_http_port() -> None:
    # No schema for this CRD in kubernetes-validate: check the fields that matter by hand.
    monitor = _one("ServiceMonitor", "escucha")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(monitor) <= {"apiVersion", "kind", "metadata", "spec"}
    endpoints = monitor["spec"]["endpoints"]
    assert isinstance(endpoints, list)
    assert endpoints
    assert all(e["port"] == "http" and e["path"] == "/metrics" for e in endpoints)
    selected = [d for _, d in _manifests() if d["kind"] == "Service"
                and monitor["spec"]["selector"]["matchLabels"].items()
                <= d["metadata"].get("labels", {}).items()]
    # Exactly one Service, or every worker would be scraped twice.
    assert len(selected) == 1
    assert any(p["name"] == "http" for p in selected[0]["spec"]["ports"])


def test_the_connectors_run_in_exactly_one_ingest_pod() -> None:
    sts = _one("StatefulSet", "escucha-ingest")
    spec = sts["spec"]
    # A StatefulSet of one: never two pods polling the same sources with the same cursors.
    assert spec["replicas"] == 1
    assert spec.get("podManagementPolicy", "OrderedReady") == "OrderedReady"
    (container,) = spec["template"]["spec"]["containers"]
    assert container["args"][0] == "ingest"
    port = container["args"][container["args"].index("--metrics-port") + 1]
    assert container["ports"] == [{"name": "metrics", "containerPort": int(port),
                                   "protocol": "TCP"}]
    assert container["args"][container["args"].index("--metrics-host") + 1] == "0.0.0.0"
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert "/var/lib/escucha" in mounts  # the cursors outlive the pod
    labels = spec["template"]["metadata"]["labels"]
    service = _one("Service", spec["serviceName"])
    assert service["spec"]["selector"].items() <= labels.items()
    monitor = _one("ServiceMonitor", "escucha-ingest")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    # The workers' disruption budget must not select it (one pod: it would block drains).
    pdb = _one("PodDisruptionBudget")["spec"]
    assert not pdb["selector"]["matchLabels"].items() <= labels.items()


def test_secrets_hold_only_placeholders() -> None:
    secrets = [d for _, d in _manifests() if d["kind"] == "Secret"]
    assert {s["metadata"]["name"] for s in secrets} == {"escucha-secrets", "escucha-store-db"}
    for secret in secrets:
        assert "data" not in secret
        for key, value in secret["stringData"].items():
            assert "REPLACE-ME" in value, f"{key} looks like a real secret: keep it out of git"


def test_workers_reach_the_store_postgresql_with_the_password_from_its_secret(
        clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    worker = _one("StatefulSet", "escucha-worker")["spec"]["template"]["spec"]["containers"][0]
    names = [e["name"] for e in worker["env"]]
    env = {e["name"]: e for e in worker["env"]}
    # Kubernetes expands $(VAR) only from variables defined before the one using it.
    assert names.index("STORE_DB_PASSWORD") < names.index("ESCUCHA_STORE__URL")
    ref = env["STORE_DB_PASSWORD"]["valueFrom"]["secretKeyRef"]
    template = env["ESCUCHA_STORE__URL"]["value"]
    assert ":$(STORE_DB_PASSWORD)@" in template  # no password in the manifest itself

    db = _one("StatefulSet", "escucha-store-db")
    (server,) = db["spec"]["template"]["spec"]["containers"]
    server_env = {e["name"]: e for e in server["env"]}
    assert server_env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"] == ref
    assert "pg_isready" in server["readinessProbe"]["exec"]["command"]
    claims = {c["metadata"]["name"] for c in db["spec"]["volumeClaimTemplates"]}
    mounts = {m["mountPath"]: m["name"] for m in server["volumeMounts"]}
    assert mounts["/var/lib/postgresql/data"] in claims
    service = _one("Service", db["spec"]["serviceName"])
    labels = db["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    # Not a worker: the web Service, the PDB and the ServiceMonitor leave it alone.
    assert not _one("Service", "escucha-web")["spec"]["selector"].items() <= labels.items()

    password = _one("Secret", ref["name"])["stringData"][ref["key"]]
    clean_env.setenv("ESCUCHA_STORE__URL", template.replace("$(STORE_DB_PASSWORD)", password))
    path = tmp_path / "escucha.yaml"
    path.write_text(_one("ConfigMap", "escucha-config")["data"]["escucha.yaml"], "utf-8")
    parts = urlsplit(load_settings(path).store.postgres_url() or "")
    assert parts.hostname == service["metadata"]["name"]
    assert parts.port == service["spec"]["ports"][0]["port"]
    assert parts.username == server_env["POSTGRES_USER"]["value"]
    assert parts.path == f"/{server_env['POSTGRES_DB']['value']}"
    assert parts.password == password


def test_configmap_config_is_a_valid_escucha_config(clean_env: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    config = _one("ConfigMap", "escucha-config")["data"]
    clean_env.setenv("ESCUCHA_KAFKA_BOOTSTRAP", config["ESCUCHA_KAFKA_BOOTSTRAP"])
    for key, value in _one("Secret", "escucha-secrets")["stringData"].items():
        clean_env.setenv(key, value)
    path = tmp_path / "escucha.yaml"
    path.write_text(config["escucha.yaml"], encoding="utf-8")
    settings = load_settings(path)
    assert len(settings.watches) == 2
    assert settings.web.host == "0.0.0.0"
    assert settings.web.port == PORT
    assert settings.kafka.bootstrap == config["ESCUCHA_KAFKA_BOOTSTRAP"]
    assert len(settings.api.tokens) == 1
    assert settings.api.link_secret is not None
