"""The serving configuration, read by both the Serve app (``serving/app.py``) and its deployer
(``serving/runtime.py``): names and routes, the deployment's options, the user config the registry implies,
and the declarative Serve config (what ``serving/config.yaml`` spells out for ``serve deploy`` / KubeRay).

Neither of the other two imports the other: this module is where they meet.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from creditrisk_assets.settings import PREFIX, Settings

APP_NAME = "creditrisk"
ROUTE_PREFIX = "/v1"
DEPLOYMENT_NAME = "PdService"
IMPORT_PATH = "serving.app:app_builder"
#: Serve's logging for the app: no access log (a line per request costs throughput), warnings and errors only
LOGGING = {"enable_access_log": False, "log_level": "WARNING"}


def base_url(settings: Settings) -> str:
    return f"http://{settings.serve_host}:{settings.serve_port}{ROUTE_PREFIX}"


def config_hash(config: dict[str, Any]) -> str:
    """A short fingerprint of a user config: deployers wait until every replica reports it."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def deployment_options(settings: Settings) -> dict[str, Any]:
    """The ``PdService`` deployment's options (the code's defaults; the declarative config repeats the ones
    it may change in place: replicas, concurrency, user config)."""
    return {"name": DEPLOYMENT_NAME, "num_replicas": settings.serve_replicas,
            "max_ongoing_requests": settings.serve_max_ongoing_requests, "ray_actor_options": {"num_cpus": 1},
            "graceful_shutdown_timeout_s": 20, "graceful_shutdown_wait_loop_s": 1, "health_check_period_s": 5}


def registry_config(settings: Settings) -> dict[str, Any]:
    """The user config the registry implies now: champion and challenger versions, routing."""
    from creditrisk_assets.modeling import registry

    client = registry.connect_for(settings)
    champion = registry.alias_version(client, registry.CHAMPION)
    challenger = registry.alias_version(client, registry.CHALLENGER)
    if challenger == champion:
        challenger = None
    return {"champion": champion, "challenger": challenger, "mode": settings.serve_mode,
            "canary_share": settings.serve_canary_share}


#: Settings of the deployer alone, not of the replicas: where the deployer finds the cluster. Left out of the
#: app's ``args``, so the same app deployed from the CLI (``CREDITRISK_RAY_ADDRESS=<head>``) and from the
#: ``serving/deployment`` asset (``local``) is one app: an alias move reconfigures the replicas in place
#: (``user_config``) instead of replacing them.
DEPLOYER_ONLY = ("CREDITRISK_RAY_ADDRESS", "CREDITRISK_SERVE_RAYSERVICE", "CREDITRISK_SERVE_RAYSERVICE_NAMESPACE")


def settings_args(settings: Settings) -> dict[str, str]:
    """Settings as ``CREDITRISK_*`` strings: the app's ``args``, so replicas see what the deployer sees
    (except ``DEPLOYER_ONLY``)."""
    out = {}
    for row in settings.describe():
        if row["variable"] in DEPLOYER_ONLY:
            continue
        value = getattr(settings, row["variable"][len(PREFIX):].lower())
        if value is not None and value != "":
            out[row["variable"]] = str(Path(value).resolve()) if isinstance(value, Path) else str(value)
    return out


def serve_config(settings: Settings, user_config: dict[str, Any]) -> dict[str, Any]:
    """The declarative Serve config of the app (Serve's ``ServeDeploySchema``), deployed as a whole: a change
    of ``user_config`` alone reconfigures the live replicas in place."""
    options = deployment_options(settings)
    return {
        "proxy_location": "HeadOnly",
        "http_options": {"host": settings.serve_host, "port": settings.serve_port},
        "logging_config": LOGGING,
        "applications": [{
            "name": APP_NAME, "route_prefix": ROUTE_PREFIX, "import_path": IMPORT_PATH,
            "args": {"settings": settings_args(settings)},
            "deployments": [{"name": DEPLOYMENT_NAME, "num_replicas": options["num_replicas"],
                             "max_ongoing_requests": options["max_ongoing_requests"],
                             "user_config": user_config}],
        }],
    }
