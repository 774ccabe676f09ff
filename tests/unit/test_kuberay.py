"""The KubeRay path of ``serving/deployment`` (``serving/kuberay.py``): patching a RayService's Serve config.

No Kubernetes cluster runs here and none can be installed from the package registries this project reaches
(Debian ships etcd but no kube-apiserver; no PyPI or npm package carries one), so the API server is a
stand-in: a loopback HTTP server in this module that holds the RayService rendered from ``infra/k8s`` (by the
same ``kubectl kustomize`` as ``test_infra.py``) and answers the real paths of the custom object API the way
kube-apiserver does for a CRD with ``x-kubernetes-preserve-unknown-fields``: GET, PATCH as
``application/merge-patch+json`` (RFC 7386), ``resourceVersion`` preconditions (409 on a stale one), bearer
tokens (401), 403/404 as ``Status`` objects, ``generation`` bumped on spec changes. It stands in for the
operator too, as far as the deployer can see it: after a patch it reports the new generation observed and the
application's status, and a stand-in of the replicas' ``/v1/health`` reports the config hash of the user config
the RayService then holds. The real ``kubernetes`` client talks to it through a kubeconfig in ``tmp_path``; none
of this project's code is replaced. What this does not show: a real API server's admission and schema
(KubeRay's CRD), and a real operator applying the config to Serve.
"""

from __future__ import annotations

import copy
import json
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import dagster as dg
import kubernetes_validate
import pytest
import yaml

from creditrisk_assets.dagster_resources import RayServe
from creditrisk_assets.settings import Settings
from serving import kuberay
from serving.config import APP_NAME, DEPLOYMENT_NAME, config_hash, settings_args
from serving.runtime import ServingError
from tests.unit import test_infra as infra

#: the stand-in API server's bearer token, made per run (a literal would be a secret in the repo's scan)
TOKEN = secrets.token_hex(16)
CONFIG = {"champion": "3", "challenger": "4", "mode": "shadow", "canary_share": 0.1}
MOVED = {"champion": "4", "challenger": None, "mode": "shadow", "canary_share": 0.1}


# ------------------------------------------------------------------------------------ the rendered manifest
@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    out = {}
    for env in infra.ENVS:
        result = infra._run(infra._tool("kubectl"), "kustomize", str(infra.K8S / "overlays" / env))
        assert result.returncode == 0, result.stderr
        out[env] = [d for d in yaml.safe_load_all(result.stdout) if d]
    return out


@pytest.fixture()
def manifest(rendered: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    (svc,) = [d for d in rendered["production"] if d["kind"] == "RayService"]
    return copy.deepcopy(svc)


def _serve(obj: dict[str, Any]) -> dict[str, Any]:
    return yaml.safe_load(obj["spec"]["serveConfigV2"])


def _our_deployment(serve: dict[str, Any]) -> dict[str, Any]:
    (app,) = [a for a in serve["applications"] if a["name"] == APP_NAME]
    (dep,) = [d for d in app["deployments"] if d["name"] == DEPLOYMENT_NAME]
    return dep


def _without_user_config(serve: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(serve)
    _our_deployment(out).pop("user_config", None)
    return out


# ------------------------------------------------------------------------------------ the pure transform
def test_the_transform_sets_only_our_user_config(manifest: dict[str, Any]) -> None:
    text = manifest["spec"]["serveConfigV2"]
    new, previous = kuberay.with_user_config(text, CONFIG)
    assert previous is None, "the manifest itself carries no user config"
    before, after = yaml.safe_load(text), yaml.safe_load(new)
    assert _our_deployment(after)["user_config"] == CONFIG
    assert _without_user_config(after) == before, "the operator's fields (proxy, http, autoscaling) are kept"
    assert list(after) == list(before), "key order kept"
    assert "args" not in after["applications"][0], "settings (secrets among them) stay out of the custom object"
    again, previous = kuberay.with_user_config(new, MOVED)
    assert previous == CONFIG and _our_deployment(yaml.safe_load(again))["user_config"] == MOVED


def test_the_transform_keeps_other_apps_and_deployments_and_adds_ours() -> None:
    text = yaml.safe_dump({"proxy_location": "EveryNode", "applications": [
        {"name": "other", "import_path": "x:y", "deployments": [{"name": DEPLOYMENT_NAME, "num_replicas": 1}]},
        {"name": APP_NAME, "import_path": "serving.app:app_builder", "args": {"keep": "me"},
         "deployments": [{"name": "Other", "num_replicas": 2}]}]})
    new, previous = kuberay.with_user_config(text, CONFIG)
    doc = yaml.safe_load(new)
    assert previous is None
    assert doc["applications"][0] == {"name": "other", "import_path": "x:y",
                                      "deployments": [{"name": DEPLOYMENT_NAME, "num_replicas": 1}]}
    ours = doc["applications"][1]
    assert ours["args"] == {"keep": "me"}, "the operator's own args are left alone"
    assert ours["deployments"] == [{"name": "Other", "num_replicas": 2},
                                   {"name": DEPLOYMENT_NAME, "user_config": CONFIG}]


@pytest.mark.parametrize(("text", "expected"), [
    ("applications: [", "is not YAML"),
    ("proxy_location: EveryNode\n", "no `applications` list"),
    ("applications:\n  - name: someone-else\n    import_path: a:b\n", "0 applications named `creditrisk`"),
])
def test_the_transform_refuses_what_is_not_our_serve_config(text: str, expected: str) -> None:
    with pytest.raises(ServingError, match=expected):
        kuberay.with_user_config(text, CONFIG)


def test_app_status_reads_kuberays_status_schema() -> None:
    obj = {"status": {"observedGeneration": 7, "serviceStatus": "Running", "activeServiceStatus": {
        "applicationStatuses": {APP_NAME: {"status": "DEPLOY_FAILED", "message": "boom",
                                           "serveDeploymentStatuses": {DEPLOYMENT_NAME: {"status": "UNHEALTHY"}}}}}}}
    assert kuberay.app_status(obj) == (7, "DEPLOY_FAILED", "boom")
    assert kuberay.app_status({}) == (None, "", "")


def test_namespace_comes_from_the_setting_then_the_pod_then_default(tmp_path: Path) -> None:
    sa = tmp_path / "namespace"
    plain = Settings.from_env({"CREDITRISK_HOME": str(tmp_path)})
    assert kuberay.namespace_for(plain, sa) == "default"
    sa.write_text("creditrisk-staging\n")
    assert kuberay.namespace_for(plain, sa) == "creditrisk-staging"
    named = Settings.from_env({"CREDITRISK_HOME": str(tmp_path), "CREDITRISK_SERVE_RAYSERVICE_NAMESPACE": "x"})
    assert kuberay.namespace_for(named, sa) == "x"


def test_the_rayservice_settings_belong_to_the_deployer_not_the_replicas(tmp_path: Path) -> None:
    settings = Settings.from_env({"CREDITRISK_HOME": str(tmp_path), "CREDITRISK_SERVE_RAYSERVICE": "rs",
                                  "CREDITRISK_SERVE_RAYSERVICE_NAMESPACE": "ns"})
    args = settings_args(settings)
    assert "CREDITRISK_SERVE_RAYSERVICE" not in args and "CREDITRISK_SERVE_RAYSERVICE_NAMESPACE" not in args
    assert args["CREDITRISK_SERVE_MODE"] == settings.serve_mode  # the others still go


# ------------------------------------------------------------------------------------ the stand-in API server
def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (what kube-apiserver applies for ``application/merge-patch+json``)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def test_merge_patch_follows_rfc_7386() -> None:  # the stand-in's own arithmetic (RFC 7386 appendix A)
    assert merge_patch({"a": "b"}, {"a": "c"}) == {"a": "c"}
    assert merge_patch({"a": "b"}, {"b": "c"}) == {"a": "b", "b": "c"}
    assert merge_patch({"a": "b"}, {"a": None}) == {}
    assert merge_patch({"a": [{"b": "c"}]}, {"a": [1]}) == {"a": [1]}
    assert merge_patch({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}) == {"a": {"b": "d"}}


@dataclass
class StandIn:
    """The stand-in API server's state and the requests it saw."""

    namespace: str
    name: str
    obj: dict[str, Any]
    requests: list[dict[str, Any]] = field(default_factory=list)
    forbidden: set[str] = field(default_factory=set)  # verbs answered 403
    before_patch: list[Callable[[StandIn], None]] = field(default_factory=list)  # one per PATCH, in order
    outcome: str = "RUNNING"  # what the "operator" reports after a patch ("" : it never reconciles)
    reconcile_after_gets: int = 2  # GETs after a patch before the operator reports the new generation
    reconciled_generation: int = 0
    served: dict[str, Any] | None = None  # the user config the replicas run (the last one the operator applied)
    _gets_since_patch: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def path(self) -> str:
        return f"/apis/ray.io/v1/namespaces/{self.namespace}/rayservices/{self.name}"

    def patches(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["method"] == "PATCH"]

    def bump(self, spec_changed: bool) -> None:
        meta = self.obj["metadata"]
        meta["resourceVersion"] = str(int(meta["resourceVersion"]) + 1)
        if spec_changed:
            meta["generation"] += 1
            self._gets_since_patch = 0

    def reconcile(self) -> None:
        """The operator's side, as the deployer sees it: the new generation observed, the app's status."""
        generation = self.obj["metadata"]["generation"]
        if not self.outcome or generation <= self.reconciled_generation:
            return
        self._gets_since_patch += 1
        if self._gets_since_patch < self.reconcile_after_gets:
            return
        self.reconciled_generation = generation
        if self.outcome == "RUNNING":
            self.served = _our_deployment(_serve(self.obj)).get("user_config")
        self.obj["status"] = {"observedGeneration": generation, "serviceStatus": "Running",
                              "activeServiceStatus": {"rayClusterName": f"{self.name}-abcde", "applicationStatuses": {
                                  APP_NAME: {"status": self.outcome,
                                             "message": "" if self.outcome == "RUNNING" else "replica crashed",
                                             "serveDeploymentStatuses": {DEPLOYMENT_NAME: {"status": "HEALTHY"}}}}}}



def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}


def _handler(state: StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _send(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _check(self, verb: str) -> bool:
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._send(401, _status(401, "Unauthorized", "Unauthorized"))
                return False
            if verb in state.forbidden:
                self._send(403, _status(403, "Forbidden", f'rayservices.ray.io "{state.name}" is forbidden: User '
                                        f'"system:serviceaccount:{state.namespace}:dagster" cannot {verb} resource '
                                        f'"rayservices" in API group "ray.io"'))
                return False
            if self.path.split("?")[0] != state.path:
                self._send(404, _status(404, "NotFound", f'rayservices.ray.io "{self.path.rsplit("/", 1)[-1]}" '
                                        "not found"))
                return False
            return True

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            with state.lock:
                state.requests.append({"method": "GET", "path": self.path})
                if self._check("get"):
                    state.reconcile()
                    self._send(200, state.obj)

        def do_PATCH(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with state.lock:
                state.requests.append({"method": "PATCH", "path": self.path, "body": body,
                                       "content_type": self.headers.get("Content-Type")})
                if not self._check("patch"):
                    return
                if self.headers.get("Content-Type") != "application/merge-patch+json":
                    self._send(415, _status(415, "UnsupportedMediaType", "expected a merge patch"))
                    return
                if state.before_patch:
                    state.before_patch.pop(0)(state)
                wanted = (body.get("metadata") or {}).get("resourceVersion")
                current = state.obj["metadata"]["resourceVersion"]
                if wanted is not None and wanted != current:
                    self._send(409, _status(409, "Conflict", f'Operation cannot be fulfilled on rayservices.ray.io '
                                            f'"{state.name}": the object has been modified; please apply your '
                                            "changes to the latest version and try again"))
                    return
                patched = merge_patch(state.obj, {k: v for k, v in body.items() if k != "status"})
                patched["metadata"]["resourceVersion"] = current  # not the client's to set
                spec_changed = patched["spec"] != state.obj["spec"]
                state.obj = patched
                state.bump(spec_changed)
                self._send(200, state.obj)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


def _health_handler(state: StandIn) -> type[BaseHTTPRequestHandler]:
    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            with state.lock:
                config = state.served
            if self.path != "/v1/health":
                self.send_response(404)
                self.end_headers()
                return
            data = json.dumps({"status": "ok", "champion": (config or {}).get("champion"),
                               "config_hash": config_hash(config) if config else "builder-default"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    return Health


@dataclass
class StandInCluster:
    state: StandIn
    kubeconfig: Path
    health_port: int

    def api(self) -> Any:
        return kuberay.custom_objects(str(self.kubeconfig))

    def settings(self, tmp_path: Path, **env: str) -> Settings:
        return Settings.from_env({"CREDITRISK_HOME": str(tmp_path / "home"), "CREDITRISK_SERVE_HOST": "127.0.0.1",
                                  "CREDITRISK_SERVE_PORT": str(self.health_port),
                                  "CREDITRISK_SERVE_RAYSERVICE": self.state.name,
                                  "CREDITRISK_SERVE_RAYSERVICE_NAMESPACE": self.state.namespace, **env})


def _serve_forever(server: ThreadingHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return thread


@pytest.fixture()
def cluster(manifest: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[StandInCluster]:
    obj = copy.deepcopy(manifest)
    obj["metadata"].update({"resourceVersion": "1000", "generation": 1, "uid": "0b0e6c9e-0000-4000-8000-000000000001",
                            "creationTimestamp": "2026-12-01T00:00:00Z"})
    namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
    obj["status"] = {"observedGeneration": 1, "serviceStatus": "Running", "activeServiceStatus": {
        "applicationStatuses": {APP_NAME: {"status": "RUNNING"}}}}  # serving already, before any patch
    state = StandIn(namespace, name, obj, reconciled_generation=1)
    api = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    health = ThreadingHTTPServer(("127.0.0.1", 0), _health_handler(state))
    threads = [_serve_forever(api), _serve_forever(health)]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "stand-in",
        "clusters": [{"name": "stand-in", "cluster": {"server": f"http://127.0.0.1:{api.server_address[1]}"}}],
        "users": [{"name": "dagster", "user": {"token": TOKEN}}],
        "contexts": [{"name": "stand-in", "context": {"cluster": "stand-in", "user": "dagster"}}]}))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))  # what runtime.ensure_deployed and the asset read
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    yield StandInCluster(state, kubeconfig, int(health.server_address[1]))
    for server in (api, health):
        server.shutdown()
        server.server_close()
    for thread in threads:
        thread.join(timeout=5)


def _assert_still_the_manifests_rayservice(obj: dict[str, Any], manifest: dict[str, Any],
                                           user_config: dict[str, Any]) -> None:
    """The patched object is the rendered RayService with only our app's user config changed: same keys, same
    cluster spec, the Serve config still parses and passes test_infra's RayService checks."""
    assert set(obj) - {"status"} == set(manifest)
    assert set(obj["spec"]) == set(manifest["spec"])
    assert obj["spec"]["rayClusterConfig"] == manifest["spec"]["rayClusterConfig"]
    assert {k: v for k, v in obj["metadata"].items() if k in manifest["metadata"]} == manifest["metadata"]
    serve = _serve(obj)
    assert _our_deployment(serve)["user_config"] == user_config
    assert _without_user_config(serve) == _without_user_config(_serve(manifest))
    infra.test_rayservice({"production": [obj]}, "production")  # the manifest's own checks
    for template in infra._pod_templates(obj):
        kubernetes_validate.validate({"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t"},
                                      "template": template}, infra.K8S_VERSION, strict=True)


# ------------------------------------------------------------------------------------ deploys through the API
def test_a_deploy_patches_the_serve_config_and_waits_for_the_operator_and_the_replicas(
        cluster: StandInCluster, manifest: dict[str, Any], tmp_path: Path) -> None:
    state = cluster.state
    rollout = kuberay.deploy(cluster.settings(tmp_path), CONFIG, api=cluster.api(), poll_s=0.05, timeout_s=20)
    (patch,) = state.patches()
    assert patch["content_type"] == "application/merge-patch+json"
    assert patch["body"]["metadata"] == {"resourceVersion": "1000"}, "guarded by the version it read"
    assert set(patch["body"]) == {"metadata", "spec"} and set(patch["body"]["spec"]) == {"serveConfigV2"}
    _assert_still_the_manifests_rayservice(state.obj, manifest, CONFIG)
    assert rollout.changed and rollout.previous is None and rollout.champion == "3"
    assert rollout.resource_version == state.obj["metadata"]["resourceVersion"] == "1001"
    assert rollout.generation == 2 and rollout.attempts == 1
    assert rollout.app_status == "RUNNING" and state.reconciled_generation == 2, "returned only once reconciled"
    assert rollout.health == "confirmed" and rollout.url == f"http://127.0.0.1:{cluster.health_port}/v1"
    assert rollout.address == f"rayservice:{state.namespace}/{state.name}"

    state.requests.clear()
    again = kuberay.deploy(cluster.settings(tmp_path), dict(CONFIG), api=cluster.api(), poll_s=0.05, timeout_s=20)
    assert not state.patches(), "an unchanged user config sends no patch"
    assert not again.changed and again.previous == CONFIG and again.resource_version == "1001"

    moved = kuberay.deploy(cluster.settings(tmp_path), MOVED, api=cluster.api(), poll_s=0.05, timeout_s=20)
    assert len(state.patches()) == 1 and moved.changed
    assert (moved.previous_champion, moved.champion) == ("3", "4") and moved.generation == 3
    _assert_still_the_manifests_rayservice(state.obj, manifest, MOVED)
    assert moved.health == "confirmed"


def test_a_concurrent_edit_is_refused_then_kept_not_overwritten(cluster: StandInCluster, tmp_path: Path) -> None:
    state = cluster.state

    def operator_scales(s: StandIn) -> None:  # someone edits the Serve config between our read and our patch
        serve = _serve(s.obj)
        _our_deployment(serve)["autoscaling_config"]["max_replicas"] = 9
        s.obj["spec"]["serveConfigV2"] = yaml.safe_dump(serve, sort_keys=False)
        s.bump(spec_changed=True)

    state.before_patch = [operator_scales]
    rollout = kuberay.deploy(cluster.settings(tmp_path), CONFIG, api=cluster.api(), poll_s=0.05, timeout_s=20)
    methods = [r["method"] for r in state.requests]
    assert methods[:4] == ["GET", "PATCH", "GET", "PATCH"], "409, then a fresh read and one retry"
    first, second = state.patches()
    assert first["body"]["metadata"]["resourceVersion"] == "1000"
    assert second["body"]["metadata"]["resourceVersion"] == "1001"
    dep = _our_deployment(_serve(state.obj))
    assert dep["user_config"] == CONFIG and dep["autoscaling_config"]["max_replicas"] == 9, "both edits kept"
    assert rollout.attempts == 2 and rollout.changed


def test_a_second_conflict_is_one_line_not_an_overwrite(cluster: StandInCluster, tmp_path: Path) -> None:
    state = cluster.state
    state.before_patch = [lambda s: s.bump(spec_changed=False)] * 2
    with pytest.raises(ServingError) as err:
        kuberay.deploy(cluster.settings(tmp_path), CONFIG, api=cluster.api(), poll_s=0.05, timeout_s=5)
    message = str(err.value)
    assert message.startswith(f"409 on patch RayService {state.namespace}/{state.name}") and "\n" not in message
    assert len(state.patches()) == 2
    assert "user_config" not in _our_deployment(_serve(state.obj)), "nothing was written"


@pytest.mark.parametrize(("forbidden", "verb"), [({"patch"}, "patch"), ({"get", "patch"}, "get")])
def test_missing_rbac_names_the_permission(cluster: StandInCluster, tmp_path: Path, forbidden: set[str],
                                           verb: str) -> None:
    cluster.state.forbidden = forbidden
    with pytest.raises(ServingError) as err:
        kuberay.deploy(cluster.settings(tmp_path), CONFIG, api=cluster.api(), poll_s=0.05, timeout_s=5)
    message = str(err.value)
    assert message == (f"403 on {verb} RayService {cluster.state.namespace}/{cluster.state.name}: the Dagster run's "
                       "service account needs get and patch on rayservices.ray.io (infra/k8s/base/rbac.yaml: "
                       "Role creditrisk-dagster-runs)")


def test_a_missing_rayservice_names_the_setting(cluster: StandInCluster, tmp_path: Path) -> None:
    settings = cluster.settings(tmp_path, CREDITRISK_SERVE_RAYSERVICE="creditrisk-servng")
    with pytest.raises(ServingError) as err:
        kuberay.deploy(settings, CONFIG, api=cluster.api(), poll_s=0.05, timeout_s=5)
    assert str(err.value).startswith(f"RayService {cluster.state.namespace}/creditrisk-servng not found: check "
                                     "CREDITRISK_SERVE_RAYSERVICE")
    assert not cluster.state.patches()


def test_rejected_credentials_and_no_credentials_are_one_line(cluster: StandInCluster, tmp_path: Path) -> None:
    bad = tmp_path / "bad-kubeconfig"
    bad.write_text(cluster.kubeconfig.read_text().replace(TOKEN, "expired"))
    with pytest.raises(ServingError, match=r"^401 on get RayService .*refused the credentials"):
        kuberay.deploy(cluster.settings(tmp_path), CONFIG, api=kuberay.custom_objects(str(bad)), timeout_s=5)
    with pytest.raises(ServingError, match=r"^no Kubernetes credentials for the RayService: a kubeconfig"):
        kuberay.custom_objects(str(tmp_path / "no-such-kubeconfig"))


def test_a_failed_application_and_a_silent_operator_fail_the_deploy(cluster: StandInCluster, tmp_path: Path) -> None:
    state = cluster.state
    state.outcome = "DEPLOY_FAILED"
    with pytest.raises(ServingError, match=r"application creditrisk is DEPLOY_FAILED after the patch \(replica "
                                           r"crashed\): `kubectl -n creditrisk-production describe rayservice"):
        kuberay.deploy(cluster.settings(tmp_path), CONFIG, api=cluster.api(), poll_s=0.05, timeout_s=20)
    state.outcome = ""  # never reconciles: the old generation's RUNNING must not count
    state.obj["status"] = {"observedGeneration": 2, "activeServiceStatus": {
        "applicationStatuses": {APP_NAME: {"status": "RUNNING"}}}}
    with pytest.raises(ServingError, match=r"did not report application creditrisk RUNNING at generation 3 within "
                                           r"1 s \(observedGeneration 2, status RUNNING\)"):
        kuberay.deploy(cluster.settings(tmp_path), MOVED, api=cluster.api(), poll_s=0.05, timeout_s=1)


def test_the_health_check_is_skipped_when_the_serve_port_does_not_answer(cluster: StandInCluster, tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = cluster.settings(tmp_path, CREDITRISK_SERVE_PORT=str(port))
    rollout = kuberay.deploy(settings, CONFIG, api=cluster.api(), poll_s=0.05, timeout_s=20)
    assert rollout.app_status == "RUNNING"
    assert rollout.health.startswith(f"not checked: http://127.0.0.1:{port}/v1 does not answer")


def test_bind_all_hosts_ask_the_rayservices_serve_service(tmp_path: Path) -> None:
    settings = Settings.from_env({"CREDITRISK_HOME": str(tmp_path), "CREDITRISK_SERVE_HOST": "0.0.0.0"})
    assert kuberay.health_url(settings, "ns", "rs") == "http://rs-serve-svc.ns.svc:8000/v1"


def test_no_champion_sends_nothing(cluster: StandInCluster, tmp_path: Path) -> None:
    with pytest.raises(ServingError, match="no model version has the `champion` alias yet"):
        kuberay.deploy(cluster.settings(tmp_path), {**CONFIG, "champion": None}, api=cluster.api())
    assert not cluster.state.requests


def test_runtime_and_the_asset_take_the_kuberay_path_with_the_registrys_champion(
        cluster: StandInCluster, manifest: dict[str, Any], tmp_path: Path) -> None:
    """``serving.runtime.ensure_deployed`` and the ``serving/deployment`` asset, credentials from KUBECONFIG,
    champion from a real (SQLite) MLflow registry: no Ray cluster is started or needed."""
    from creditrisk_assets.assets.serving import deployment
    from creditrisk_assets.modeling import registry
    from serving import runtime

    settings = cluster.settings(tmp_path)
    client = registry.connect_for(settings)
    client.create_registered_model(registry.REGISTERED_MODEL)
    for _ in range(2):
        version = client.create_model_version(registry.REGISTERED_MODEL, source=f"file://{tmp_path}/model").version
    client.set_registered_model_alias(registry.REGISTERED_MODEL, registry.CHAMPION, "1")

    got, config = runtime.ensure_deployed(settings)
    assert config == {"champion": "1", "challenger": None, "mode": "shadow", "canary_share": 0.1}
    assert got.address == f"rayservice:{cluster.state.namespace}/{cluster.state.name}" and got.pid == 0
    _assert_still_the_manifests_rayservice(cluster.state.obj, manifest, config)

    client.set_registered_model_alias(registry.REGISTERED_MODEL, registry.CHAMPION, version)
    serve = RayServe(host="127.0.0.1", port=cluster.health_port, rayservice=cluster.state.name,
                     rayservice_namespace=cluster.state.namespace, rollout_timeout_s=20)
    for expect_patch in (True, False):
        result = dg.materialize([deployment], resources={"serve": serve, "settings": settings})
        assert result.success
        (mat,) = result.asset_materializations_for_node("serving__deployment")
        meta = {k: v.value for k, v in mat.metadata.items()}
        assert meta["path"] == "kuberay" and meta["rayservice"] == f"{cluster.state.namespace}/{cluster.state.name}"
        assert meta["patched"] is expect_patch and meta["champion_version"] == "2"
        assert meta["previous_champion_version"] == ("1" if expect_patch else "2")
        assert meta["resource_version"] == cluster.state.obj["metadata"]["resourceVersion"]
        assert meta["inspect"] == f"kubectl -n {cluster.state.namespace} describe rayservice {cluster.state.name}"
    assert len(cluster.state.patches()) == 2, "one per champion move, none for the unchanged second run"
    assert _our_deployment(_serve(cluster.state.obj))["user_config"]["champion"] == "2"


# ------------------------------------------------------------------------------------ RBAC and settings
def rbac_allows(docs: list[dict[str, Any]], namespace: str, account: str, verb: str, group: str, resource: str,
                name: str) -> bool:
    """Whether the Roles/RoleBindings in ``docs`` let ServiceAccount ``namespace/account`` ``verb`` the object."""
    roles = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Role"}
    for binding in (d for d in docs if d["kind"] == "RoleBinding"):
        if not any(s.get("kind") == "ServiceAccount" and s.get("name") == account and s.get("namespace") == namespace
                   for s in binding.get("subjects", [])):
            continue
        role = roles.get(binding["roleRef"]["name"]) if binding["roleRef"]["kind"] == "Role" else None
        for rule in (role or {}).get("rules", []):
            if (group in rule.get("apiGroups", []) and resource in rule.get("resources", [])
                    and (verb in rule.get("verbs", []) or "*" in rule.get("verbs", []))
                    and (not rule.get("resourceNames") or name in rule["resourceNames"])):
                return True
    return False


@pytest.mark.parametrize("env", infra.ENVS)
def test_dagster_runs_may_get_and_patch_the_rayservice(rendered: dict[str, list[dict[str, Any]]], env: str) -> None:
    docs = rendered[env]
    (svc,) = [d for d in docs if d["kind"] == "RayService"]
    namespace, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
    values = infra._dagster_values(env)
    account = values["serviceAccount"]["name"]
    assert values["global"]["serviceAccountName"] == account, "run pods use the chart's account, not the subchart's"
    for verb in ("get", "patch"):
        assert rbac_allows(docs, namespace, account, verb, "ray.io", "rayservices", name), verb
    for verb in ("delete", "create", "update"):
        assert not rbac_allows(docs, namespace, account, verb, "ray.io", "rayservices", name), verb
    assert not rbac_allows(docs, namespace, account, "patch", "ray.io", "rayservices", "another"), "only this one"
    assert not rbac_allows(docs, namespace, "creditrisk-serving", "patch", "ray.io", "rayservices", name)
    assert not [d for d in docs if "REPLACED_BY_OVERLAY" in json.dumps(d)], "every placeholder replaced"
    (settings,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == infra.SETTINGS_CONFIGMAP]
    assert settings["data"]["CREDITRISK_SERVE_RAYSERVICE"] == name
    assert "CREDITRISK_SERVE_RAYSERVICE_NAMESPACE" not in settings["data"], "the pod's own namespace"


def test_the_rbac_check_fails_without_the_grant(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = copy.deepcopy(rendered["staging"])
    (role,) = [d for d in docs if d["kind"] == "Role" and d["metadata"]["name"] == "creditrisk-dagster-runs"]
    role["rules"][0]["verbs"] = ["get"]
    assert rbac_allows(docs, "creditrisk-staging", "dagster", "get", "ray.io", "rayservices", "creditrisk-serving")
    assert not rbac_allows(docs, "creditrisk-staging", "dagster", "patch", "ray.io", "rayservices",
                           "creditrisk-serving")
    assert not rbac_allows(docs, "default", "dagster", "get", "ray.io", "rayservices", "creditrisk-serving")
