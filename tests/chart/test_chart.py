"""The Helm chart and the image: `helm lint --strict` and `helm template | kubernetes-validate --strict`
for every value set in charts/emofactory/ci, hadolint on every Dockerfile, and the rendered
containers against what the services read (env names, ports, probes, consumers)."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from emofactory.pipeline import NAMES, SETTINGS

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "emofactory"
VALUE_SETS = sorted((CHART / "ci").glob("*-values.yaml"))
BIN = Path(sys.executable).parent
SECTIONS = SETTINGS


def tool(name: str) -> str:
    path = BIN / name if (BIN / name).exists() else shutil.which(name)
    if not path:
        pytest.skip(f"{name} is not installed (make setup installs it)")
    return str(path)


def render(values: Path, *options: str) -> list[dict]:
    command = [tool("helm"), "template", "r", str(CHART), "-f", str(values), *options]
    out = subprocess.run(command, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


CRDS = ("--api-versions", "keda.sh/v1alpha1", "--api-versions", "monitoring.coreos.com/v1")


def test_crd_kinds_only_where_the_cluster_has_them():
    """KEDA's ScaledObjects and the Prometheus Operator's ServiceMonitors render only on a cluster that
    has their CRDs; without KEDA the Deployments carry their replica counts (or the CPU HPA scales)."""
    values = CHART / "ci" / "default-values.yaml"
    monitored = ("--set", "serviceMonitor.enabled=true")
    plain = render(values, *monitored)
    assert not [d for d in plain if d["kind"] in ("ScaledObject", "ServiceMonitor")]
    assert [d["kind"] for d in plain].count("HorizontalPodAutoscaler") == len(NAMES)  # KEDA absent: CPU
    full = render(values, *monitored, *CRDS)
    kinds = [d["kind"] for d in full]
    assert kinds.count("ScaledObject") == kinds.count("ServiceMonitor") == len(NAMES)
    assert "HorizontalPodAutoscaler" not in kinds
    fixed = render(values, "--set", "hpa.enabled=false")  # neither autoscaler: the replica counts
    assert all(d["spec"]["replicas"] >= 1 for d in fixed if d["kind"] == "Deployment")


def test_replica_bounds_the_cluster_would_reject_fail_the_render():
    for sets, message in (
        (("services.vad.minReplicas=5", "services.vad.maxReplicas=2"), "minReplicas 5 is more than maxReplicas 2"),
        (("services.catalog.minReplicas=3", "services.catalog.maxReplicas=3"), "needs an external database"),
    ):
        args = [a for pair in (("--set", x) for x in sets) for a in pair]
        out = subprocess.run(
            [tool("helm"), "template", "r", str(CHART), "-f", str(CHART / "ci" / "default-values.yaml"), *args],
            capture_output=True,
            text=True,
        )
        assert out.returncode != 0 and message in out.stderr, out.stderr


RESTRICTED_VOLUMES = {"configMap", "secret", "emptyDir", "persistentVolumeClaim", "projected", "downwardAPI",
                      "ephemeral", "csi"}  # fmt: skip


@pytest.mark.parametrize("values", VALUE_SETS, ids=lambda p: p.stem)
def test_every_pod_meets_pod_security_restricted(values):
    """The rules of PodSecurity `restricted` (Kubernetes 1.30), checked on every rendered pod spec,
    bundled NATS, MinIO and Triton included; and every emptyDir has a size limit."""
    for doc in render(values, *CRDS):
        spec = (doc.get("spec", {}).get("template") or {}).get("spec")
        if not spec:
            continue
        where, pod_context = f"{doc['kind']}/{doc['metadata']['name']}", spec.get("securityContext", {})
        assert not any(spec.get(k) for k in ("hostNetwork", "hostPID", "hostIPC")), where
        for volume in spec.get("volumes", []):
            assert set(volume) - {"name"} <= RESTRICTED_VOLUMES, (where, volume)
            if "emptyDir" in volume:
                assert volume["emptyDir"].get("sizeLimit"), (where, volume)
        for container in spec.get("initContainers", []) + spec["containers"]:
            context = {**pod_context, **container.get("securityContext", {})}
            assert context.get("runAsNonRoot") is True and context.get("runAsUser", 1) != 0, where
            assert context.get("seccompProfile", {}).get("type") in ("RuntimeDefault", "Localhost"), where
            assert context.get("allowPrivilegeEscalation") is False and not context.get("privileged"), where
            assert context.get("capabilities", {}).get("drop") == ["ALL"], where
            assert not set(context.get("capabilities", {}).get("add", [])) - {"NET_BIND_SERVICE"}, where


@pytest.mark.parametrize("values", VALUE_SETS, ids=lambda p: p.stem)
def test_chart_lints_and_validates(values, tmp_path):
    lint = subprocess.run(
        [tool("helm"), "lint", "--strict", str(CHART), "-f", str(values)], capture_output=True, text=True
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(yaml.safe_dump_all(render(values)))
    check = subprocess.run(
        [tool("kubernetes-validate"), "--strict", "-k", "1.30.0", str(manifest)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    for line in check.stdout.splitlines():  # only the CRDs (KEDA, Prometheus Operator) have no schema here
        assert not line.startswith("WARN") or "ScaledObject" in line or "ServiceMonitor" in line, line


def test_schema_rejects_bad_values():
    bad = subprocess.run(
        [tool("helm"), "template", "r", str(CHART), "--set", "models.backend=gpu", "--set", "minio.rootPassword=x"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0 and "models" in bad.stderr


def test_dockerfiles_pass_hadolint():
    dockerfiles = sorted(ROOT.glob("deploy/**/Dockerfile*"))
    assert dockerfiles
    for dockerfile in dockerfiles:
        out = subprocess.run([tool("hadolint"), str(dockerfile)], capture_output=True, text=True)
        assert out.returncode == 0, out.stdout


def env_names_are_settings(env: list[dict]) -> None:
    for item in env:
        name = item["name"]
        if not name.startswith("EMO_") or name == "EMO_CONFIG":
            continue
        section, _, field = name.removeprefix("EMO_").lower().partition("__")
        assert section in SECTIONS, f"{name}: no config section {section!r}"
        fields = {f.name for f in dataclasses.fields(SECTIONS[section])}
        assert field in fields, f"{name}: {SECTIONS[section].__name__} has no field {field!r}"


@pytest.mark.parametrize("values", VALUE_SETS, ids=lambda p: p.stem)
def test_rendered_containers_match_what_services_read(values):
    docs = render(values)
    topology = yaml.safe_load((CHART / "files" / "jetstream.yaml").read_text())
    config_map = next(d for d in docs if d["kind"] == "ConfigMap" and "jetstream.yaml" in d["data"])
    assert yaml.safe_load(config_map["data"]["jetstream.yaml"]) == topology
    assert set(yaml.safe_load(config_map["data"]["config.yaml"]) or {}) <= set(SECTIONS)
    deployments = {
        d["metadata"]["labels"].get("app.kubernetes.io/component"): d for d in docs if d["kind"] == "Deployment"
    }
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    for name in NAMES:
        pod = deployments[name]["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["args"] == ["emofactory.serve", name]
        assert container["image"] == f"emofactory-{name}:0.1.0"  # the image `make image` builds for it
        env_names_are_settings(container["env"])
        env = {e["name"]: e.get("value") for e in container["env"]}
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert int(env["EMO_SERVER__GRPC_PORT"]) == ports["grpc"]
        speaks_tls(values, pod, container)
        assert int(env["EMO_SERVER__METRICS_PORT"]) == ports["metrics"]
        assert env["EMO_SERVER__HOST"] == "0.0.0.0" and env["EMO_CONFIG"] == "/etc/emofactory/config.yaml"
        assert container["securityContext"]["readOnlyRootFilesystem"] and pod["securityContext"]["runAsNonRoot"]
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert {"/tmp", env["EMO_SERVER__WORK_DIR"], "/etc/emofactory"} <= mounts
        svc = services[deployments[name]["metadata"]["name"]]
        named = {"grpc", "metrics"} | ({"review"} if name == "catalog" else set())  # the review page
        assert {p["name"]: p["targetPort"] for p in svc["spec"]["ports"]} == {n: n for n in named}
        if name == "catalog":
            assert int(env["EMO_CATALOG__REVIEW_PORT"]) == ports["review"]
    for scaled in (d for d in docs if d["kind"] == "ScaledObject"):
        trigger = scaled["spec"]["triggers"][0]["metadata"]
        assert trigger["stream"] == topology["stream"]["name"] and trigger["consumer"] in NAMES
    # No hook that --wait, Argo CD or Flux could wait on: each service applies the mounted topology.
    assert not [d for d in docs if "helm.sh/hook" in d["metadata"].get("annotations", {})]
    for name in NAMES:
        (container,) = deployments[name]["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["EMO_BUS__TOPOLOGY"] == "/etc/emofactory/jetstream.yaml" and "jetstream.yaml" in config_map["data"]
    if "triton" in deployments:
        triton_matches_the_repository(deployments, services, values)


def triton_matches_the_repository(deployments: dict, services: dict, values: Path) -> None:
    """Services reach the chart's Triton on its gRPC port; on GPUs it takes each model's GPU config;
    its env settings are the models' settings."""
    (container,) = deployments["triton"]["spec"]["template"]["spec"]["containers"]
    service = services[deployments["triton"]["metadata"]["name"]]
    grpc_port = next(p["port"] for p in service["spec"]["ports"] if p["name"] == "grpc")
    assert {"name": "grpc", "containerPort": grpc_port} in container["ports"]
    for name in ("vision", "labeler", "asr"):
        env = {e["name"]: e.get("value") for e in deployments[name]["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["EMO_MODELS__TRITON_URL"] == f"{service['metadata']['name']}:{grpc_port}"
    env_names_are_settings(container.get("env", []))
    gpu = yaml.safe_load(values.read_text()).get("triton", {}).get("gpu", {}).get("enabled", True)
    assert ("--model-config-name=gpu" in container["args"]) == gpu
    for config in sorted((ROOT / "deploy" / "triton" / "models").glob("*/config.pbtxt")):
        gpu_config = config.parent / "configs" / "gpu.pbtxt"
        assert "KIND_CPU" in config.read_text() and "KIND_GPU" in gpu_config.read_text()
        strip = lambda text: [line for line in text.splitlines() if "instance_group" not in line]  # noqa: E731
        assert strip(config.read_text()) == strip(gpu_config.read_text()), gpu_config


def speaks_tls(values: Path, pod: dict, container: dict) -> None:
    """Secrets reach a service from Secrets only; with TLS, its certificate from the mounted TLS Secret,
    the client CA with mutual TLS, and probes by TCP (kubelet's gRPC probe speaks no TLS)."""
    tls = (yaml.safe_load(values.read_text()) or {}).get("tls", {})
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
    assert {"EMO_SERVER__AUTH_TOKEN", "EMO_BUS__USER", "EMO_BUS__PASSWORD", "EMO_STORE__SECRET_KEY"} <= set(refs)
    env = {e["name"]: e.get("value") for e in container["env"]}
    probe = container["readinessProbe"]
    if not tls.get("existingSecret"):
        assert probe["grpc"]["port"] == int(env["EMO_SERVER__GRPC_PORT"]) and "EMO_SERVER__TLS_CERT" not in env
        return
    assert probe["tcpSocket"]["port"] == "grpc"
    (volume,) = [v for v in pod["volumes"] if v.get("secret", {}).get("secretName") == tls["existingSecret"]]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    assert env["EMO_SERVER__TLS_CERT"] == f"{mount['mountPath']}/tls.crt"
    assert env["EMO_SERVER__TLS_KEY"] == f"{mount['mountPath']}/tls.key"
    assert env.get("EMO_SERVER__TLS_CLIENT_CA") == (f"{mount['mountPath']}/ca.crt" if tls.get("mutualTLS") else None)


def test_every_service_from_one_image_where_asked():
    docs = render(CHART / "ci" / "default-values.yaml", "--set", "image.perService=false")
    pods = [d["spec"]["template"]["spec"] for d in docs if d["kind"] == "Deployment"]
    images = {c["image"] for p in pods for c in p["containers"] if c["args"][:1] == ["emofactory.serve"]}
    assert images == {"emofactory:0.1.0"}


def test_the_bundled_nats_and_minio_take_clients_from_this_release_only():
    docs = render(CHART / "ci" / "default-values.yaml")
    policies = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "NetworkPolicy"}
    for name, port in (("r-nats", "client"), ("r-minio", "s3")):
        rule = next(r for r in policies[name]["ingress"] if {"port": port} in r["ports"])
        assert rule["from"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/instance": "r"}}}]
    (nats,) = [d for d in docs if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "r-nats"]
    (container,) = nats["spec"]["template"]["spec"]["containers"]
    secrets = {e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"]}
    assert secrets == {"NATS_USER": "r-auth", "NATS_PASSWORD": "r-auth"} and "--config" in container["args"]
    (auth,) = [d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == "r-auth"]
    assert set(auth["data"]) == {"grpc-token", "nats-user", "nats-password"}


def test_the_chart_names_the_pipelines_stages_and_settings():
    """values.yaml runs every stage of the pipeline; the schema knows each stage and settings section."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert tuple(values["services"]) == NAMES
    assert schema["properties"]["services"]["required"] == list(NAMES)
    assert schema["properties"]["config"]["propertyNames"]["enum"] == list(SETTINGS)


@pytest.mark.parametrize("values", VALUE_SETS, ids=lambda p: p.stem)
def test_pods_run_as_the_release_account_with_their_own_scheduling(values):
    """One ServiceAccount (its token unmounted: nothing calls the Kubernetes API), scratch space
    requested from the scheduler, a service's own scheduling over the global one; Triton with its
    disruption budget, network policy, startup probe and runtime class."""
    given = yaml.safe_load(values.read_text()) or {}
    docs = render(values, *CRDS)
    (account,) = [d for d in docs if d["kind"] == "ServiceAccount"]
    assert account["metadata"].get("annotations", {}) == given.get("serviceAccount", {}).get("annotations", {})
    deployments = {
        d["metadata"]["labels"]["app.kubernetes.io/component"]: d
        for d in docs
        if d["kind"] == "Deployment" and "app.kubernetes.io/component" in d["metadata"]["labels"]
    }
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == account["metadata"]["name"] and pod["automountServiceAccountToken"] is False
        assert all("ephemeral-storage" in c["resources"]["requests"] for c in pod["containers"]), name
        services = given.get("services", {})
        own = given.get("triton", {}) if name == "triton" else services.get(name, {}).get("scheduling", {})
        for key in ("nodeSelector", "topologySpreadConstraints", "priorityClassName"):
            assert pod.get(key) == (own.get(key, given.get(key)) or None), (name, key)
    if "triton" in deployments:
        kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
        name = deployments["triton"]["metadata"]["name"]
        assert {("PodDisruptionBudget", name), ("NetworkPolicy", name)} <= kinds
        pod = deployments["triton"]["spec"]["template"]["spec"]
        assert pod["containers"][0]["startupProbe"] and pod.get("runtimeClassName") == given["triton"].get(
            "runtimeClassName"
        )


def test_an_external_nats_with_its_own_secrets_tls_and_keda_authentication():
    """Against an external NATS the services take its user from its Secret and verify it with the
    mounted CA (presenting their own certificate); KEDA reads the monitoring endpoint and account
    through a TriggerAuthentication; metrics are open to the monitoring namespace only."""
    docs = render(CHART / "ci" / "external-values.yaml", *CRDS)
    (auth,) = [d for d in docs if d["kind"] == "TriggerAuthentication"]
    assert {(r["parameter"], r["name"]) for r in auth["spec"]["secretTargetRef"]} == {
        ("natsServerMonitoringEndpoint", "emofactory-nats-monitoring"),
        ("account", "emofactory-nats-monitoring"),
    }
    for scaled in (d for d in docs if d["kind"] == "ScaledObject"):
        (trigger,) = scaled["spec"]["triggers"]
        assert trigger["authenticationRef"]["name"] == auth["metadata"]["name"]
        assert "natsServerMonitoringEndpoint" not in trigger["metadata"] and trigger["metadata"]["useHttps"] == "true"
    for deployment in (d for d in docs if d["kind"] == "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
        assert refs["EMO_BUS__USER"] == {"name": "emofactory-nats", "key": "user"}
        assert refs["EMO_BUS__PASSWORD"] == {"name": "emofactory-nats", "key": "password"}
        env = {e["name"]: e.get("value") for e in container["env"]}
        (volume,) = [v for v in pod["volumes"] if v.get("secret", {}).get("secretName") == "emofactory-nats-tls"]
        (mount,) = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
        for setting, file in (("TLS_CA", "ca.crt"), ("TLS_CERT", "tls.crt"), ("TLS_KEY", "tls.key")):
            assert env[f"EMO_BUS__{setting}"] == f"{mount['mountPath']}/{file}"
    metrics_from = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    for policy in (d for d in docs if d["kind"] == "NetworkPolicy"):
        assert metrics_from in [peer for rule in policy["spec"]["ingress"] for peer in rule["from"]]
    assert not [d for d in render(CHART / "ci" / "default-values.yaml", *CRDS) if d["kind"] == "TriggerAuthentication"]
