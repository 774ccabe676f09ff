"""MLflow: tracking runs, one registered model (``creditrisk-pd``) with aliases, promotion history.

Aliases move without history, so every move is also recorded: a tag on the version
(``promoted_at``, ``previous_champion``) and a JSON list on the registered model
(``champion_history``) that ``rollback`` walks back.

Lifecycle: a challenger that passed the gate either becomes champion at once or, when approval is required,
waits for ``approve`` (who, why: tags and history). ``retire`` takes a version out of use (aliases removed,
tag ``retired``); its run, metrics and card stay, so what it decided can still be explained, and its model
files stay too unless ``CREDITRISK_RETIRE_ARTIFACTS=delete``.

A version is created only once its run holds the model artefact, and with its tags in the same call
(``registration=complete``, ``gate_decision=pending``, the run's lineage tags): a tracking server lost at
any point leaves either no version or a complete one, and the error names the tracking URI. Versions
found without their artefact or tags (older code, by hand) are marked ``registration=failed`` before the
next registration and are never made champion.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.pyfunc import PythonModel

from ..settings import mask_credentials
from .train import TrainedModel

if TYPE_CHECKING:
    from ..settings import Settings

REGISTERED_MODEL = "creditrisk-pd"
EXPERIMENT = "creditrisk-pd"
CHAMPION, CHALLENGER = "champion", "challenger"
#: Version tags written atomically with the version (``create_model_version(tags=...)``).
REGISTRATION, COMPLETE, FAILED = "registration", "complete", "failed"
GATE_DECISION, PENDING = "gate_decision", "pending"  # the gate (ml/promotion) sets promoted / refused
#: With ``CREDITRISK_PROMOTION_APPROVAL=required`` a challenger that passed the gate waits: gate_decision
#: ``awaiting_approval`` and approval ``pending`` until ``approve`` (tags approved_by / _at / approval_reason).
AWAITING_APPROVAL, APPROVAL = "awaiting_approval", "approval"
#: A retired version: tag ``retired=true`` (with retired_at / retired_reason), no alias, artefacts kept.
RETIRED = "retired"
#: A dead tracking server fails in seconds, not after MLflow's default 7 retries with back-off (minutes);
#: the environment may set other values (``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` / ``_TIMEOUT``).
HTTP_MAX_RETRIES, HTTP_TIMEOUT_S = 1, 10

log = logging.getLogger("creditrisk.modeling.registry")


class MlflowUnavailable(RuntimeError):
    """The tracking server cannot be used; the message names the setting to fix."""


class PdModel(PythonModel):
    """The pyfunc wrapper served everywhere: raw feature columns in, PD out (both model kinds)."""

    def __init__(self, trained: TrainedModel) -> None:
        self.trained = trained

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None) -> np.ndarray:
        return self.trained.predict_pd(model_input)


def connect_for(settings: Settings) -> MlflowClient:
    """``connect`` to the registry the settings name (the CLI and serving; assets use the ``mlflow`` resource)."""
    return connect(settings.resolved_mlflow_uri, settings.mlflow_artifact_location)


def connect(tracking_uri: str, artifact_location: str | None = None) -> MlflowClient:
    """Point MLflow at ``tracking_uri`` and fail fast (one clear error) when a server is unreachable.

    ``artifact_location`` is used when the experiment is created (local stores keep artifacts in the
    data home, not in the working directory); a server's own default applies otherwise.
    """
    bound_retries()
    problem = unreachable(tracking_uri)
    if problem:
        raise MlflowUnavailable(f"MLflow tracking server {mask_credentials(tracking_uri)} is unreachable ({problem}): "
                                "check CREDITRISK_MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri)
    if client.get_experiment_by_name(EXPERIMENT) is None:
        client.create_experiment(EXPERIMENT, artifact_location=artifact_location)
    mlflow.set_experiment(EXPERIMENT)
    return client


def bound_retries() -> None:
    """Bound the MLflow client's HTTP retries and timeout (read by MLflow on every request)."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", str(HTTP_MAX_RETRIES))
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(HTTP_TIMEOUT_S))


def unreachable(tracking_uri: str) -> str | None:
    """Why a tracking server does not answer ``/health`` (None: it answers, or the store is local)."""
    if not tracking_uri.startswith("http"):
        return None
    try:
        with urllib.request.urlopen(tracking_uri.rstrip("/") + "/health", timeout=3) as r:  # noqa: S310
            r.read()
    except (urllib.error.URLError, OSError) as exc:
        return str(exc)
    return None


@contextlib.contextmanager
def server_errors_named(tracking_uri: str, doing: str) -> Iterator[None]:
    """Turn a failure while the tracking server is gone into ``MlflowUnavailable`` naming its URI (other
    failures, with the server up, pass unchanged)."""
    try:
        yield
    except MlflowUnavailable:
        raise
    except Exception as exc:
        problem = unreachable(tracking_uri)
        if problem is None:
            raise
        raise MlflowUnavailable(
            f"MLflow tracking server {tracking_uri} went away while {doing} ({type(exc).__name__}; now: {problem}); "
            "no version is left half-registered: rerun once it is back (check CREDITRISK_MLFLOW_TRACKING_URI)"
        ) from exc


@dataclass
class LoggedModel:
    run_id: str
    version: str | None  # registered model version (None when not registered)
    model_uri: str


def log_model_run(client: MlflowClient, trained: TrainedModel, *, example: pd.DataFrame,
                  metrics: dict[str, float], params: dict[str, Any], tags: dict[str, str],
                  artifacts: dict[str, bytes | str], register: bool) -> LoggedModel:
    """One MLflow run: params, metrics, tags, artifacts and the model; then, with ``register``, a new
    version of the registered model created with its tags in one call, after the run has ended with
    everything in it (a failure before leaves no version; one after leaves a complete version)."""
    bound_retries()
    with server_errors_named(client.tracking_uri, f"logging the pd_{trained.kind} run"):
        if register:
            sweep_incomplete(client)
        with mlflow.start_run(run_name=f"pd_{trained.kind}", tags=tags) as run:
            mlflow.log_params({k: v for k, v in params.items() if v is not None})
            mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(v)})
            with tempfile.TemporaryDirectory(prefix="creditrisk-mlflow-") as tmp:
                for name, content in artifacts.items():
                    path = Path(tmp) / name
                    path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
                    mlflow.log_artifact(str(path))
            info = _log_model(trained, trained.input_frame(example))
    version = None
    if register:
        with server_errors_named(client.tracking_uri, f"registering the pd_{trained.kind} model"):
            version = _register_version(client, info.model_uri, info.model_id, run.info.run_id,
                                        {**tags, REGISTRATION: COMPLETE, GATE_DECISION: PENDING})
    return LoggedModel(run.info.run_id, version, info.model_uri)


def _log_model(trained: TrainedModel, x: pd.DataFrame) -> Any:
    """The pyfunc model into the active run (its artefact upload); not registered here."""
    return mlflow.pyfunc.log_model(
        name="model", python_model=PdModel(trained), input_example=x.head(5),
        signature=infer_signature(x, trained.predict_pd(x)),
        pip_requirements=["xgboost-cpu==3.2.0", "scikit-learn==1.9.1", "pandas==2.3.3", "mlflow==3.17.2"],
    )


def _register_version(client: MlflowClient, model_uri: str, model_id: str, run_id: str,
                      tags: dict[str, str]) -> str:
    """A new version of ``creditrisk-pd`` with ``tags``, atomically (one ``create_model_version``)."""
    try:
        client.create_registered_model(REGISTERED_MODEL)
    except MlflowException as exc:
        if exc.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
            raise
    mv = client.create_model_version(REGISTERED_MODEL, model_uri, run_id=run_id, tags=tags, model_id=model_id)
    with contextlib.suppress(MlflowException):  # the logged model's link to its version (UI only)
        client.set_logged_model_tags(model_id, {"mlflow.modelVersions": json.dumps(
            [{"name": REGISTERED_MODEL, "version": str(mv.version)}])})
    return str(mv.version)


def version_problem(client: MlflowClient, mv: Any) -> str | None:
    """Why a version is not complete (no model artefact, no gate tags, not ready); None when it is."""
    if mv.tags.get(REGISTRATION) == FAILED:
        return mv.tags.get("registration_error") or "marked failed"
    if mv.tags.get(REGISTRATION) == COMPLETE:  # created with its tags, after its artefact was logged
        return None
    if str(mv.status) != "READY":
        return f"status {mv.status}"
    if GATE_DECISION not in mv.tags:
        return "no gate tags (registered without them, or interrupted before the gate)"
    try:
        uri = client.get_model_version_download_uri(REGISTERED_MODEL, str(mv.version))
        names = {Path(f.path).name for f in mlflow.artifacts.list_artifacts(artifact_uri=uri)}
    except (MlflowException, OSError) as exc:
        return f"model artefact unreadable ({type(exc).__name__})"
    return None if "MLmodel" in names else "no model artefact (MLmodel missing)"


def sweep_incomplete(client: MlflowClient) -> list[str]:
    """Mark versions without their model artefact or tags ``registration=failed`` (with the reason), so
    nothing treats them as candidates; versions holding an alias are in use and left alone. Returns the
    versions marked now."""
    aliased = {alias_version(client, CHAMPION), alias_version(client, CHALLENGER)}
    marked = []
    for mv in client.search_model_versions(f"name='{REGISTERED_MODEL}'"):
        if str(mv.version) in aliased or mv.tags.get(REGISTRATION) in (COMPLETE, FAILED):
            continue
        problem = version_problem(client, mv)
        if problem is None:
            continue
        client.set_model_version_tag(REGISTERED_MODEL, str(mv.version), "registration_error", problem[:4000])
        client.set_model_version_tag(REGISTERED_MODEL, str(mv.version), REGISTRATION, FAILED)
        log.warning("model version marked incomplete", extra={"version": str(mv.version), "problem": problem})
        marked.append(str(mv.version))
    return marked


def alias_version(client: MlflowClient, alias: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(REGISTERED_MODEL, alias).version)
    except MlflowException:
        return None


def version_metrics(client: MlflowClient, version: str) -> dict[str, float]:
    mv = client.get_model_version(REGISTERED_MODEL, version)
    if mv.run_id is None:  # registered from outside a run; every version this project registers has one
        raise MlflowException(f"{REGISTERED_MODEL} version {version} has no source run to read metrics from")
    return dict(client.get_run(mv.run_id).data.metrics)


def history(client: MlflowClient) -> list[dict[str, str]]:
    try:
        tags = client.get_registered_model(REGISTERED_MODEL).tags
    except MlflowException:
        return []
    return json.loads(tags.get("champion_history", "[]"))


class LifecycleError(ValueError):
    """A lifecycle step that does not apply to this version; the message says what to do instead."""


def set_champion(client: MlflowClient, version: str, reason: str, at: str, *, by: str = "", kind: str = "") -> str | None:
    """Move ``champion`` to ``version`` and record the move (``by``, ``kind``: who and how, when given);
    returns the previous champion. A version marked ``registration=failed`` or retired is refused
    (LifecycleError, a ValueError)."""
    tags = client.get_model_version(REGISTERED_MODEL, version).tags
    if tags.get(REGISTRATION) == FAILED:
        raise LifecycleError(f"{REGISTERED_MODEL} version {version} is incomplete "
                             f"({tags.get('registration_error', 'registration failed')}): it cannot be champion")
    if tags.get(RETIRED) == "true":
        raise LifecycleError(f"{REGISTERED_MODEL} version {version} is retired ({tags.get('retired_reason', '')[:80]}): "
                             "it cannot be champion")
    previous = alias_version(client, CHAMPION)
    client.set_registered_model_alias(REGISTERED_MODEL, CHAMPION, version)
    client.set_model_version_tag(REGISTERED_MODEL, version, "promoted_at", at)
    client.set_model_version_tag(REGISTERED_MODEL, version, "previous_champion", previous or "")
    client.set_model_version_tag(REGISTERED_MODEL, version, "promotion_reason", reason[:4000])
    if tags.get(GATE_DECISION) == AWAITING_APPROVAL:  # promoted by other means (by hand): it waits no more
        client.set_model_version_tag(REGISTERED_MODEL, version, GATE_DECISION, "promoted")
    move = {"version": version, "previous": previous or "", "at": at, "reason": reason[:500]}
    move.update({k: v for k, v in (("by", by), ("kind", kind)) if v})
    moves = (history(client) + [move])[-50:]
    client.set_registered_model_tag(REGISTERED_MODEL, "champion_history", json.dumps(moves))
    record_sign_off(client, version, [m for m in moves if m["version"] == version])
    return previous


def ui_links(tracking_uri: str, *, run_id: str | None = None, experiment_id: str | None = None,
             version: str | None = None) -> dict[str, str]:
    """Links into the MLflow UI (the run, the registered version) when MLflow is a server; {} otherwise (a
    local SQLite store has no UI until ``mlflow ui --backend-store-uri <uri>`` is run)."""
    if not tracking_uri.startswith(("http://", "https://")):
        return {}
    base, out = tracking_uri.rstrip("/"), {}
    if run_id and experiment_id:
        out["mlflow_run"] = f"{base}/#/experiments/{experiment_id}/runs/{run_id}"
    if version:
        out["mlflow_model_version"] = f"{base}/#/models/{REGISTERED_MODEL}/versions/{version}"
    return out


MODEL_CARD = "model_card.md"
SIGN_OFF = "## Sign-off"


def sign_off_lines(moves: list[dict[str, str]]) -> list[str]:
    """The model card's Sign-off section: every time this version became champion, how, by whom and why."""
    if not moves:
        return ["_Not champion yet._ Each time this version becomes champion (gate, approval, manual promotion, "
                "override, rollback) the move is recorded here: when, how, by whom and why."]
    rows = [[m["at"], m.get("kind") or "automatic", m.get("by") or "-", m["previous"] or "-",
             m["reason"].replace("|", "/")] for m in moves]
    return ["| when | how | by | previous champion | reason |", "|---|---|---|---|---|",
            *("| " + " | ".join(str(c) for c in r) + " |" for r in rows)]


def with_sign_off(card: str, moves: list[dict[str, str]]) -> str:
    """``card`` with its Sign-off section replaced (added before Limitations, or at the end, when missing)."""
    section = "\n".join([SIGN_OFF, "", *sign_off_lines(moves), ""]) + "\n"
    lines = [line if line.endswith("\n") else line + "\n" for line in card.splitlines(keepends=True)]
    start = next((i for i, line in enumerate(lines) if line.rstrip() == SIGN_OFF), None)
    if start is None:
        at = next((i for i, line in enumerate(lines) if line.rstrip() == "## Limitations"), len(lines))
        gap = ["\n"] if at and lines[at - 1].strip() else []
        return "".join(lines[:at] + gap + [section] + lines[at:])
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return "".join(lines[:start] + [section] + lines[end:])


def record_sign_off(client: MlflowClient, version: str, moves: list[dict[str, str]]) -> bool:
    """Rewrite the Sign-off section of the version's model card (the run's ``model_card.md``); False when the
    run has no card (a version logged without evaluation). The champion has moved already: a failure here is
    logged, not raised (the history on the registered model holds the same facts)."""
    try:
        run_id = client.get_model_version(REGISTERED_MODEL, version).run_id
        if not run_id or MODEL_CARD not in {a.path for a in client.list_artifacts(run_id)}:
            return False
        with tempfile.TemporaryDirectory() as tmp:
            card = Path(client.download_artifacts(run_id, MODEL_CARD, tmp)).read_text()
        client.log_text(run_id, with_sign_off(card, moves), MODEL_CARD)
        return True
    except (MlflowException, OSError) as exc:
        log.warning("model card sign-off not updated", extra={"version": version, "error": type(exc).__name__})
        return False


def rollback(client: MlflowClient, at: str, by: str = "") -> str:
    """Put the champion before the current one back; returns the version now champion."""
    current = alias_version(client, CHAMPION)
    previous = next((m["previous"] for m in reversed(history(client)) if m["version"] == current and m["previous"]),
                    None)
    if not previous:
        raise LifecycleError(f"no earlier champion to roll back to (current: {current})")
    set_champion(client, previous, f"rollback from version {current}", at, by=by, kind="rollback")
    return previous


def request_approval(client: MlflowClient, version: str, at: str) -> None:
    """The gate passed but a person must approve: the version waits (``gate_decision=awaiting_approval``)."""
    for key, value in ((GATE_DECISION, AWAITING_APPROVAL), (APPROVAL, PENDING), ("approval_requested_at", at)):
        client.set_model_version_tag(REGISTERED_MODEL, version, key, value)


def awaiting_approval(client: MlflowClient) -> list[str]:
    """Versions waiting for ``approve``, oldest first."""
    return sorted((str(mv.version) for mv in client.search_model_versions(f"name='{REGISTERED_MODEL}'")
                   if mv.tags.get(GATE_DECISION) == AWAITING_APPROVAL), key=int)


def approve(client: MlflowClient, version: str, by: str, reason: str, at: str) -> str | None:
    """Approve a version that passed the gate and waits: it becomes champion; who approved it and why are
    tags on the version and in the promotion history. Returns the previous champion."""
    if not by.strip() or not reason.strip():
        raise LifecycleError("an approval names who approves (--by NAME) and why (--reason ...)")
    tags = client.get_model_version(REGISTERED_MODEL, version).tags
    if tags.get(GATE_DECISION) != AWAITING_APPROVAL:
        raise LifecycleError(f"{REGISTERED_MODEL} version {version} is not awaiting approval (gate_decision="
                             f"{tags.get(GATE_DECISION, 'none')}): only a challenger that passed the gate with "
                             "CREDITRISK_PROMOTION_APPROVAL=required is; see `creditrisk models`")
    previous = set_champion(client, version, f"approved by {by}: {reason}", at, by=by, kind="approval")
    for key, value in ((APPROVAL, "approved"), ("approved_by", by[:250]), ("approved_at", at),
                       ("approval_reason", reason[:4000]), (GATE_DECISION, "promoted")):
        client.set_model_version_tag(REGISTERED_MODEL, version, key, value)
    return previous


def retire(client: MlflowClient, version: str, reason: str, at: str, by: str = "", delete_model: bool = False) -> None:
    """Take a version out of use: its aliases removed (never the champion's: promote another first), tag
    ``retired=true`` with when, why and who. The run, its metrics, model card and plots are always kept (model
    risk policies keep documentation and decisions for years); ``delete_model`` also deletes the model files
    (``MLmodel``, the pickled model, its environment: tag ``model_artifact=deleted``), so the version can
    never be loaded again. The registry entry stays, as does every history entry naming it."""
    if alias_version(client, CHAMPION) == version:
        raise LifecycleError(f"{REGISTERED_MODEL} version {version} is the champion: promote or roll back to "
                             "another version before retiring it")
    client.get_model_version(REGISTERED_MODEL, version)  # exists (MlflowException naming it otherwise)
    if alias_version(client, CHALLENGER) == version:
        client.delete_registered_model_alias(REGISTERED_MODEL, CHALLENGER)
    for key, value in ((RETIRED, "true"), ("retired_at", at), ("retired_reason", reason[:4000]),
                       ("retired_by", by[:250])):
        if value:
            client.set_model_version_tag(REGISTERED_MODEL, version, key, value)
    if delete_model:
        delete_model_files(client, version)


def delete_model_files(client: MlflowClient, version: str) -> None:
    """Delete the model files of a version through the tracking server's artefact store (or the local one)."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    uri = client.get_model_version_download_uri(REGISTERED_MODEL, version)
    get_artifact_repository(uri).delete_artifacts()
    client.set_model_version_tag(REGISTERED_MODEL, version, "model_artifact", "deleted")


def last_champions(client: MlflowClient, k: int) -> list[str]:
    """The ``k`` most recent distinct champions, newest first (the current one first)."""
    out: list[str] = []
    current = alias_version(client, CHAMPION)
    for v in ([current] if current else []) + [m["version"] for m in reversed(history(client))]:
        if v not in out:
            out.append(v)
    return out[:k]


def retire_older_than_champions(client: MlflowClient, keep: int, at: str, delete_model: bool = False) -> list[str]:
    """Retire every version older than the oldest of the last ``keep`` champions (0: none), except versions
    holding an alias (``delete_model``: as in ``retire``); returns the versions retired now."""
    if keep <= 0:
        return []
    kept = last_champions(client, keep)
    if len(kept) < keep:
        return []  # fewer champions than kept so far: nothing is old enough
    oldest = min(int(v) for v in kept)
    aliased = {alias_version(client, CHAMPION), alias_version(client, CHALLENGER)}
    retired = []
    for mv in client.search_model_versions(f"name='{REGISTERED_MODEL}'"):
        v = str(mv.version)
        if int(v) < oldest and v not in kept and v not in aliased and mv.tags.get(RETIRED) != "true":
            retire(client, v, f"older than the last {keep} champions ({', '.join(kept)})", at, delete_model=delete_model)
            retired.append(v)
    return sorted(retired, key=int)
