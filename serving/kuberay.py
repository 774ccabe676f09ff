"""The KubeRay path of ``serving/deployment``: under a ``RayService`` the KubeRay operator owns the Serve config,
so the deployer patches the RayService through the Kubernetes API instead of deploying to Serve directly.

``deploy`` reads the RayService (``ray.io/v1``, ``rayservices``), sets the ``user_config`` of the ``creditrisk``
application's ``PdService`` deployment in ``spec.serveConfigV2`` (a YAML string) to what the registry implies
(``serving.config.registry_config``: exactly what the direct path sends), and merge-patches it back with the
``resourceVersion`` it read, so an edit made in between is refused (409) and retried once on a fresh read, never
overwritten. The operator then applies the new Serve config to the running cluster: a change of ``user_config``
alone reconfigures the replicas in place. ``deploy`` waits (bounded) for the RayService status to report the
application ``RUNNING`` at the patched generation, and, where the Serve HTTP port answers, for ``/v1/health`` to
report the new config hash on every replica (``runtime.wait_serving``). An unchanged user config sends no patch.

What is kept as the operator wrote it: everything but that one ``user_config`` — proxy location, HTTP options,
the import path, route prefix, autoscaling, actor options, and the application's ``args``. ``serve_config``'s
``args`` (every setting as a string, secrets included) are not written into the RayService: the spec of a
custom object is not a Secret (``creditrisk:viewers`` may read RayServices, never Secrets), and the operator's
pods already get the settings from the ``creditrisk-settings`` ConfigMap and the ``creditrisk-secrets`` Secret,
the same ones the Dagster run pods read.

Plain functions, no Dagster. Credentials: in a pod (``KUBERNETES_SERVICE_HOST`` set) its service account,
else the kubeconfig (``KUBECONFIG`` or ``~/.kube/config``). Tested against a stand-in API server (a loopback
HTTP server answering the real paths with the RayService rendered from ``infra/k8s``), not a real
kube-apiserver nor a real operator: ``tests/unit/test_kuberay.py``.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # types-PyYAML is not in the dev dependencies

from creditrisk_assets.settings import Settings

from .config import APP_NAME, DEPLOYMENT_NAME, ROUTE_PREFIX, base_url, registry_config
from .runtime import Cluster, ServingError, wait_serving

log = logging.getLogger("creditrisk.serving")

GROUP, VERSION, PLURAL = "ray.io", "v1", "rayservices"
#: where a pod finds its own namespace (and, beside it, its service account token)
SA_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
#: how long ``deploy`` waits for the operator and the replicas after a patch (the ``RayServe`` resource's
#: ``rollout_timeout_s`` passes its own)
ROLLOUT_TIMEOUT_S = 600.0
#: KubeRay's application statuses (Ray Serve's) after which waiting longer does not help
FAILED_STATES = ("DEPLOY_FAILED", "UNHEALTHY")
#: addresses a Serve proxy binds to, not ones a client can reach: the health check then asks the RayService's
#: serve Service (KubeRay names it ``<rayservice>-serve-svc``)
BIND_ALL = ("0.0.0.0", "::", "")
API_TIMEOUT_S = 30
_SETTINGS_HINT = "check CREDITRISK_SERVE_RAYSERVICE and CREDITRISK_SERVE_RAYSERVICE_NAMESPACE"
_RBAC_HINT = ("the Dagster run's service account needs get and patch on rayservices.ray.io "
              "(infra/k8s/base/rbac.yaml: Role creditrisk-dagster-runs)")


@dataclass
class Rollout:
    """What one ``deploy`` did to the RayService."""

    namespace: str
    name: str
    config: dict[str, Any]  # the user config now in the RayService
    previous: dict[str, Any] | None  # the user config it had (None: none)
    changed: bool  # patched (False: it already had this user config, nothing was sent)
    resource_version: str  # of the RayService after the patch (or as read, when unchanged)
    generation: int | None = None
    attempts: int = 1  # reads before the patch was accepted (2: a concurrent edit was refused once)
    app_status: str = ""  # KubeRay's status of the application when deploy returned
    health: str = "not checked"  # `confirmed`, or why /v1/health was not checked
    url: str = ""  # the app's HTTP base the health check used
    notes: list[str] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def champion(self) -> str:
        return str(self.config.get("champion") or "")

    @property
    def previous_champion(self) -> str:
        return str((self.previous or {}).get("champion") or "")

    @property
    def address(self) -> str:
        """How the deployment names where the app runs (``Cluster.address`` of this path)."""
        return f"rayservice:{self.ref}"

    def cluster(self) -> Cluster:
        """The app as ``runtime.ensure_deployed`` reports it (no local process, no metrics port of ours)."""
        return Cluster(self.address, 0, 0, self.url)


# ------------------------------------------------------------------------------------------ the pure transform
def with_user_config(serve_config_v2: str, user_config: dict[str, Any], app: str = APP_NAME,
                     deployment: str = DEPLOYMENT_NAME) -> tuple[str, dict[str, Any] | None]:
    """``serve_config_v2`` (a RayService's ``spec.serveConfigV2``) with ``user_config`` set on ``deployment`` of
    ``app``, everything else as it was (key order kept; YAML comments are not). Returns the new YAML and the
    user config the deployment had. Raises ServingError when the YAML is not a Serve config with that app."""
    try:
        doc = yaml.safe_load(serve_config_v2)
    except yaml.YAMLError as exc:
        raise ServingError(f"spec.serveConfigV2 is not YAML ({str(exc).splitlines()[0]}): fix the RayService") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("applications"), list):
        raise ServingError("spec.serveConfigV2 has no `applications` list: it is not a Serve config "
                           "(see infra/k8s/base/rayservice.yaml)")
    apps = [a for a in doc["applications"] if isinstance(a, dict) and a.get("name") == app]
    if len(apps) != 1:
        names = [a.get("name") for a in doc["applications"] if isinstance(a, dict)]
        raise ServingError(f"spec.serveConfigV2 has {len(apps)} applications named `{app}` (it has {names}): "
                           "add exactly one (see infra/k8s/base/rayservice.yaml)")
    deployments = apps[0].setdefault("deployments", [])
    if not isinstance(deployments, list):
        raise ServingError(f"spec.serveConfigV2: `deployments` of `{app}` is not a list")
    matches = [d for d in deployments if isinstance(d, dict) and d.get("name") == deployment]
    if not matches:
        matches = [{"name": deployment}]
        deployments.append(matches[0])
    previous = matches[0].get("user_config")
    matches[0]["user_config"] = user_config
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False), previous


def app_status(obj: dict[str, Any], app: str = APP_NAME) -> tuple[int | None, str, str]:
    """From a RayService's status (KubeRay ``RayServiceStatuses``): the generation the operator last observed
    (None: it does not say), and the status and message of ``app`` in the active cluster."""
    status = obj.get("status") or {}
    active = status.get("activeServiceStatus") or {}
    entry = (active.get("applicationStatuses") or {}).get(app) or {}
    observed = status.get("observedGeneration")
    return (int(observed) if observed is not None else None, str(entry.get("status") or ""),
            str(entry.get("message") or ""))


# ------------------------------------------------------------------------------------------ the Kubernetes API
def namespace_for(settings: Settings, sa_namespace_file: Path = SA_NAMESPACE_FILE) -> str:
    """``CREDITRISK_SERVE_RAYSERVICE_NAMESPACE``, else the pod's own namespace, else ``default``."""
    if settings.serve_rayservice_namespace:
        return settings.serve_rayservice_namespace
    try:
        return sa_namespace_file.read_text().strip() or "default"
    except OSError:
        return "default"


def custom_objects(kubeconfig: str | None = None) -> Any:
    """A ``CustomObjectsApi``: the pod's service account when in a pod, else the kubeconfig (``kubeconfig``,
    ``KUBECONFIG`` or ``~/.kube/config``). Raises ServingError saying which credentials are missing."""
    from kubernetes import client, config

    configuration = client.Configuration()
    try:
        if os.environ.get("KUBERNETES_SERVICE_HOST") and kubeconfig is None:
            config.load_incluster_config(client_configuration=configuration)
        else:
            # KUBECONFIG read now: the client reads it once, when first imported
            config.load_kube_config(config_file=kubeconfig or os.environ.get("KUBECONFIG") or None,
                                    client_configuration=configuration)
    except config.ConfigException as exc:
        where = ("the pod's service account token (the run pod needs automountServiceAccountToken)"
                 if os.environ.get("KUBERNETES_SERVICE_HOST") and kubeconfig is None
                 else "a kubeconfig (KUBECONFIG or ~/.kube/config)")
        raise ServingError(f"no Kubernetes credentials for the RayService: {where} ({exc})") from None
    configuration.retries = 1
    return client.CustomObjectsApi(client.ApiClient(configuration))


def _api_error(exc: Exception, verb: str, ref: str) -> ServingError:
    """One line naming what to fix, from an ``ApiException`` (or a connection error) of ``verb`` on ``ref``."""
    status = getattr(exc, "status", None)
    if status is None or status == 0:
        return ServingError(f"cannot reach the Kubernetes API to {verb} RayService {ref} ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0][:200] if str(exc) else ''}): check the kubeconfig / "
                            "the pod's network")
    message = ""
    try:
        message = str(json.loads(getattr(exc, "body", "") or "{}").get("message") or "")
    except ValueError:
        message = str(getattr(exc, "body", "") or "")[:200]
    if status == 404:
        return ServingError(f"RayService {ref} not found: {_SETTINGS_HINT} (and that the KubeRay operator's "
                            "CRDs are installed)")
    if status == 403:
        return ServingError(f"403 on {verb} RayService {ref}: {_RBAC_HINT}")
    if status == 401:
        return ServingError(f"401 on {verb} RayService {ref}: the Kubernetes API refused the credentials "
                            "(service account token / kubeconfig)")
    if status == 409:
        return ServingError(f"409 on {verb} RayService {ref}: it was changed again while being patched (a fresh "
                            "read was refused too): materialise serving/deployment again")
    if status == 422:
        return ServingError(f"422 on {verb} RayService {ref}: the API server refused the patched object ({message})")
    return ServingError(f"{status} {getattr(exc, 'reason', '')} on {verb} RayService {ref}"
                        + (f" ({message})" if message else ""))


def read_rayservice(api: Any, namespace: str, name: str) -> dict[str, Any]:
    try:
        obj = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name,
                                               _request_timeout=API_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - ApiException, urllib3 errors: one line naming what to fix
        raise _api_error(exc, "get", f"{namespace}/{name}") from None
    return dict(obj)


def patch_user_config(api: Any, namespace: str, name: str, user_config: dict[str, Any]) -> Rollout:
    """Set the app's user config in the RayService (merge patch of ``spec.serveConfigV2``, guarded by the
    ``resourceVersion`` read); a refused guard (409: a concurrent edit) is retried once on a fresh read. No
    patch when the RayService already has this user config."""
    ref = f"{namespace}/{name}"
    for attempt in (1, 2):
        obj = read_rayservice(api, namespace, name)
        metadata = obj.get("metadata") or {}
        text = (obj.get("spec") or {}).get("serveConfigV2")
        if not isinstance(text, str) or not text.strip():
            raise ServingError(f"RayService {ref} has no spec.serveConfigV2: give it the Serve config of "
                               "infra/k8s/base/rayservice.yaml")
        try:
            new_text, previous = with_user_config(text, user_config)
        except ServingError as exc:
            raise ServingError(f"RayService {ref}: {exc}") from None
        if previous == user_config:
            return Rollout(namespace, name, user_config, previous, False, str(metadata.get("resourceVersion", "")),
                           metadata.get("generation"), attempt, app_status(obj)[1])
        body = {"metadata": {"resourceVersion": metadata.get("resourceVersion")},
                "spec": {"serveConfigV2": new_text}}
        try:
            patched = api.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, body,
                                                         _request_timeout=API_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - see read_rayservice
            if getattr(exc, "status", None) == 409 and attempt == 1:
                log.warning("RayService changed while patching it: reading it again",
                            extra={"rayservice": ref, "resource_version": metadata.get("resourceVersion")})
                continue
            raise _api_error(exc, "patch", ref) from None
        done = (patched or {}).get("metadata") or {}
        return Rollout(namespace, name, user_config, previous, True, str(done.get("resourceVersion", "")),
                       done.get("generation"), attempt, app_status(patched or {})[1])
    raise AssertionError("unreachable: the second attempt returns or raises")


def wait_running(api: Any, rollout: Rollout, timeout_s: float, poll_s: float = 2.0) -> str:
    """Block until the RayService's status reports the app ``RUNNING`` at the patched generation (when the
    operator reports ``observedGeneration``; without it, a ``RUNNING`` may still be the old config's, and only
    the health check tells). Raises ServingError on a failed application or at the deadline."""
    deadline, ref = time.monotonic() + timeout_s, rollout.ref
    observed, state, message = None, "", ""
    while True:
        obj = read_rayservice(api, rollout.namespace, rollout.name)
        observed, state, message = app_status(obj)
        fresh = observed is None or rollout.generation is None or observed >= int(rollout.generation)
        if fresh and state == "RUNNING":
            if observed is None:
                rollout.notes.append("the RayService status has no observedGeneration: RUNNING may predate the patch")
            return state
        if fresh and observed is not None and state in FAILED_STATES:
            raise ServingError(f"RayService {ref}: application {APP_NAME} is {state} after the patch"
                               + (f" ({message.splitlines()[0][:300]})" if message else "")
                               + f": `kubectl -n {rollout.namespace} describe rayservice {rollout.name}` and the "
                               "head pod's Serve logs")
        if time.monotonic() >= deadline:
            raise ServingError(f"RayService {ref} did not report application {APP_NAME} RUNNING at generation "
                               f"{rollout.generation} within {timeout_s:.0f} s (observedGeneration {observed}, "
                               f"status {state or 'none'}): `kubectl -n {rollout.namespace} describe rayservice "
                               f"{rollout.name}`")
        time.sleep(poll_s)


def health_url(settings: Settings, namespace: str, name: str) -> str:
    """Where the deployer asks ``/v1/health``: ``CREDITRISK_SERVE_HOST:PORT``, or, when that is a bind-all
    address (the pods' own setting), the RayService's serve Service."""
    if settings.serve_host in BIND_ALL:
        return f"http://{name}-serve-svc.{namespace}.svc:{settings.serve_port}{ROUTE_PREFIX}"
    return base_url(settings)


def _answers(url: str) -> str:
    """'' when ``url``'s ``/health`` answers HTTP at all, else why not."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5):  # noqa: S310 - the app's own health route
            return ""
    except urllib.error.HTTPError:
        return ""
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return str(getattr(exc, "reason", exc))


def deploy(settings: Settings, user_config: dict[str, Any] | None = None, *, api: Any = None,
           timeout_s: float = ROLLOUT_TIMEOUT_S, poll_s: float = 2.0, confirmations: int = 3) -> Rollout:
    """Point the RayService ``CREDITRISK_SERVE_RAYSERVICE`` at the registry's champion (``user_config``: what
    the registry implies unless given), then wait (at most ``timeout_s``) for the operator and, where it
    answers, the app's ``/v1/health``. Returns what changed."""
    if not settings.serve_rayservice:
        raise ServingError("CREDITRISK_SERVE_RAYSERVICE is empty: the KubeRay path needs the RayService's name")
    config = user_config if user_config is not None else registry_config(settings)
    if not config.get("champion"):
        raise ServingError("no model version has the `champion` alias yet: materialise ml/promotion first "
                           "(or `creditrisk promote --version N`)")
    namespace, name = namespace_for(settings), settings.serve_rayservice
    api = api if api is not None else custom_objects()
    started = time.monotonic()
    rollout = patch_user_config(api, namespace, name, config)
    rollout.url = health_url(settings, namespace, name)
    log.info("RayService user config", extra={"rayservice": rollout.ref, "changed": rollout.changed,
                                              "champion": rollout.champion,
                                              "previous_champion": rollout.previous_champion,
                                              "resource_version": rollout.resource_version})
    if not rollout.changed:
        return rollout
    rollout.app_status = wait_running(api, rollout, timeout_s, poll_s)
    why = _answers(rollout.url)
    if why:
        rollout.health = f"not checked: {rollout.url} does not answer ({why})"
        return rollout
    wait_serving(rollout.url, config, confirmations=confirmations,
                 timeout_s=max(5.0, timeout_s - (time.monotonic() - started)),
                 logs=f"`kubectl -n {namespace} describe rayservice {name}` and the head pod's Serve logs")
    rollout.health = "confirmed"
    return rollout
