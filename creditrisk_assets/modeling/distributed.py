"""XGBoost on Ray Train (data-parallel workers, trials side by side) and the Ray runtime of a job.

``train_xgboost_ray`` is ``train.train_xgboost`` on Ray: the same candidates (``search_candidates``), trained
by Ray Train runs of ``train_ray_workers`` data-parallel workers (``XGBoostTrainer`` with ``xgboost.collective``
set up by Ray's ``XGBoostConfig``: the workers' histograms are all-reduced, so every worker builds the same
trees from its shard), early stopping on the (sharded) validation AUC, and then the same choice of trial
(AUC on the whole validation split, in the driver), calibration and ``search`` table (``train.best_of``).
The candidates are dealt to as many runs as the cluster's free CPUs hold side by side (one CPU per worker),
each run in a thread of the driver (``XGBoostTrainer.fit`` blocks its thread while its controller runs);
a run's workers train its candidates one after another. A candidate is only started while the time
budget is not spent, as in the local search. The driver puts the
training and validation rows in the object store once, cut into one contiguous part per worker
(``split_rows``); worker ``r`` of every run reads part ``r`` only (a Ray Data ``streaming_split`` of the same
frames costs a coordinator actor and read tasks per run: ~20 s here). The boosters come back as the return
value of rank 0 (no checkpoint: nothing needs storage shared between nodes).

``ray_runtime`` gives a job its Ray: with ``CREDITRISK_RAY_ADDRESS=local`` a private instance in this
process (its CPUs: ``CREDITRISK_PARALLELISM``, files under a short ``/tmp/ray-crj-*`` path, stopped at the
end), never the local serving cluster, whose CPUs the Serve replicas hold; else it connects to the address.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
import pandas as pd

from ..ray_auth import AUTH_MODE, LOCAL_AUTH_MODE
from .dataset import TARGET
from .train import (
    SEED,
    TrainedModel,
    Trial,
    best_of,
    booster_params,
    search_candidates,
    valid_auc,
    weighted_rows,
    xgboost_dmatrix,
    xgboost_shell,
)

if TYPE_CHECKING:
    from ..settings import Settings

Engine = Literal["local", "ray"]
#: the sample-weight column of the datasets the workers read
WEIGHT = "__weight"
#: loggers of the Ray libraries a job uses, kept at warnings (their progress lines are per round / block)
RAY_LOGGERS = ("ray", "ray.train", "ray.data", "ray.tune")
log = logging.getLogger("creditrisk.distributed")
_lock = threading.Lock()
_ours: list[str] = []  # the temp dir of the private Ray this module started, while it runs


def choose_engine(setting: str, rows: int, min_rows: int) -> Engine:
    """``local`` / ``ray`` as set; ``auto``: ``ray`` from ``min_rows`` rows."""
    if setting in ("local", "ray"):
        return setting  # type: ignore[return-value]
    if setting != "auto":
        raise ValueError(f"engine {setting!r}: expected auto, local or ray")
    return "ray" if rows >= min_rows else "local"


def training_engine(settings: Settings, train_rows: int) -> Engine:
    """Where ``ml/pd_xgboost`` trains: ``CREDITRISK_TRAIN_ENGINE``, ``auto`` by the training set's rows."""
    return choose_engine(settings.train_engine, train_rows, settings.train_ray_min_rows)


def scoring_engine(settings: Settings, gold_rows: int) -> Engine:
    """Where the feature store is batch-scored: ``CREDITRISK_BATCH_SCORING_ENGINE``, ``auto`` by its rows."""
    return choose_engine(settings.batch_scoring_engine, gold_rows, settings.train_ray_min_rows)


def trial_slots(free_cpus: float, workers: int) -> int:
    """Train runs that fit side by side: one CPU per worker, at least one run (it waits for its CPUs)."""
    return max(1, int(free_cpus // max(1, workers)))


def split_rows(frame: pd.DataFrame, parts: int) -> list[pd.DataFrame]:
    """``frame`` in ``parts`` contiguous parts of (nearly) equal rows: the workers' shards."""
    bounds = np.linspace(0, len(frame), parts + 1).round().astype(int)
    return [frame.iloc[a:b].reset_index(drop=True) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _quiet() -> None:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "1")
    for name in RAY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


@contextlib.contextmanager
def ray_runtime(address: str = "local", num_cpus: int = 2) -> Iterator[None]:
    """Ray for the duration of a job (see the module's docstring). Nested uses share the outer one.

    A connection this process already holds to another cluster (``serving.runtime.connect`` leaves one) is
    closed first: Ray allows one per process, and the deployers reconnect whenever they need it."""
    import ray

    _quiet()
    with _lock:
        nested = ray.is_initialized() and bool(_ours)
        temp, pinned = None, False
        if not nested:
            if ray.is_initialized():
                log.info("closing this process's Ray connection: the job runs on a Ray of its own")
                ray.shutdown()
            try:
                if address == "local":
                    temp = tempfile.mkdtemp(prefix="ray-crj-", dir="/tmp")  # Ray's socket paths must stay short
                    if AUTH_MODE not in os.environ:  # unpinned, ray.init would turn tokens on for this process
                        os.environ[AUTH_MODE], pinned = LOCAL_AUTH_MODE, True  # until the end of the job
                    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, _temp_dir=temp,
                             _node_ip_address="127.0.0.1", log_to_driver=False, logging_level=logging.WARNING)
                else:
                    ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
            except BaseException:
                _restore(temp, pinned)
                raise
            _ours.append(temp or address)
    if nested:
        yield
        return
    try:
        from ray.data import DataContext

        ctx = DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        yield
    finally:
        with _lock:
            _ours.clear()
            ray.shutdown()
            _restore(temp, pinned)


def _restore(temp: str | None, pinned: bool) -> None:
    if temp:
        shutil.rmtree(temp, ignore_errors=True)
    if pinned:
        os.environ.pop(AUTH_MODE, None)


def free_cpus() -> float:
    import ray

    return float(ray.available_resources().get("CPU", 0.0))


def _train_worker(config: dict[str, Any]) -> list[tuple[int, bytes]] | None:
    """One Ray Train worker of one run: its shards of train and validation (the rank's part, from the object
    store) as DMatrix (typed by the shell, so every shard has the training categories), then the run's
    candidates one after another, each by ``xgboost.train`` inside Ray's collective context. Before each
    candidate rank 0 decides whether the time budget allows it and broadcasts the decision (the workers must
    agree: a worker alone in a collective call would wait for ever). Rank 0 returns the boosters.

    No per-round ``RayTrainReportCallback``: each ``ray.train.report`` synchronises the workers with the
    controller (measured here: ~2 s a round on a loaded 2-core machine, against milliseconds for the round
    itself), and the boosters come back as the return value."""
    import ray.train
    import xgboost as xgb
    from xgboost import collective

    shell: TrainedModel = config["shell"]
    rank = ray.train.get_context().get_world_rank()

    def shard(name: str) -> xgb.DMatrix:
        frame = ray.get(config["shards"][name][rank])
        return xgboost_dmatrix(shell, frame, frame[WEIGHT].to_numpy() if WEIGHT in frame else None)

    dtrain, dvalid = shard("train"), shard("valid")
    boosters = []
    for index, params in config["trials"]:
        go = index == 0 or time.time() <= config["deadline"]  # the search's first candidate always runs
        if not collective.broadcast(go, 0):
            break
        booster = xgb.train(params, dtrain, num_boost_round=config["num_boost_round"], evals=[(dvalid, "valid")],
                            early_stopping_rounds=config["early_stopping_rounds"], verbose_eval=False)
        boosters.append((index, bytes(booster.save_raw("ubj"))))
    return boosters if rank == 0 else None


def _fit_run(trials: list[tuple[int, dict[str, Any]]], config: dict[str, Any], workers: int,
             storage: str) -> dict[int, Any]:
    """One Train run of ``workers`` workers over ``trials`` (blocks this thread); the boosters by candidate."""
    import ray.train
    import xgboost as xgb
    from ray.train.xgboost import XGBoostTrainer

    trainer = XGBoostTrainer(  # Train v2 (RAY_TRAIN_V2_ENABLED, Ray's default): the worker's return value comes back
        cast(Any, _train_worker), train_loop_config={**config, "trials": trials},
        scaling_config=ray.train.ScalingConfig(num_workers=workers, resources_per_worker={"CPU": 1}),
        run_config=ray.train.RunConfig(name=f"pd-xgboost-{uuid.uuid4().hex[:8]}", storage_path=storage),
    )
    out = {}
    result: Any = trainer.fit()
    for index, raw in result.return_value or []:
        booster = xgb.Booster()
        booster.load_model(bytearray(raw))
        out[index] = booster
    return out


def train_xgboost_ray(train: pd.DataFrame, valid: pd.DataFrame, features: list[str], categorical: list[str],
                      seed: int = SEED, trials: int = 6, time_budget_s: float = 120.0,
                      num_boost_round: int = 2000, early_stopping_rounds: int = 50,
                      candidates: list[dict[str, Any]] | None = None,
                      sample_weight: np.ndarray | None = None, workers: int = 2) -> TrainedModel:
    """``train.train_xgboost`` on the Ray this process is connected to (``ray_runtime``).

    The candidates are dealt in turn to as many Ray Train runs as the free CPUs hold side by side (one CPU,
    one XGBoost thread per worker; ``trial_slots``), each of ``workers`` data-parallel workers that train
    their candidates one after another (a worker group starts once per run, not per candidate: ~10-40 s
    here). A candidate starts only while ``time_budget_s`` is not spent (the first always). Same candidates,
    same choice of trial, same calibration and ``search`` table as the local search; the model's params
    record ``engine: ray``, the workers and the runs side by side."""
    import ray

    started = time.perf_counter()
    train, weight, recorded = weighted_rows(train, sample_weight)
    shell = xgboost_shell(train, features, categorical)
    columns = [*features, TARGET]
    rows = train[columns].assign(**({WEIGHT: weight} if weight is not None else {}))
    todo = search_candidates(seed, trials, candidates)
    fulls = [booster_params(p, seed, 1) for p in todo]
    slots = min(trial_slots(free_cpus(), workers), len(todo))
    config = {"shell": shell, "num_boost_round": num_boost_round, "early_stopping_rounds": early_stopping_rounds,
              "deadline": time.time() + time_budget_s - (time.perf_counter() - started),
              "shards": {"train": [ray.put(part) for part in split_rows(rows, workers)],
                         "valid": [ray.put(part) for part in split_rows(valid[columns], workers)]}}
    runs = [[(i, fulls[i]) for i in range(slot, len(todo), slots)] for slot in range(slots)]
    storage = tempfile.mkdtemp(prefix="creditrisk-train-")  # Train's run state (no checkpoints)
    boosters: dict[int, Any] = {}
    try:
        with ThreadPoolExecutor(slots, thread_name_prefix="ray-train") as pool:
            for done in pool.map(lambda run: _fit_run(run, config, workers, storage), runs):
                boosters.update(done)
    finally:
        shutil.rmtree(storage, ignore_errors=True)
    if 0 not in boosters:
        raise RuntimeError("the Ray Train run of the first candidate returned no booster")
    results = [Trial(todo[i], boosters[i], fulls[i], valid_auc(boosters[i], shell, valid)) for i in sorted(boosters)]
    return best_of(shell, results, valid, recorded, started,
                   {"engine": "ray", "ray_workers": workers, "ray_trials_in_parallel": slots})


def train_xgboost_on(engine: Engine, settings: Settings, train: pd.DataFrame, valid: pd.DataFrame,
                     features: list[str], categorical: list[str], **kwargs: Any) -> TrainedModel:
    """``train_xgboost`` (``local``: ``CREDITRISK_PARALLELISM`` threads) or ``train_xgboost_ray`` (``ray``:
    ``CREDITRISK_TRAIN_RAY_WORKERS`` workers per trial, on ``CREDITRISK_RAY_ADDRESS``), same arguments."""
    from .train import train_xgboost

    if engine == "local":
        return train_xgboost(train, valid, features, categorical, threads=settings.workers, **kwargs)
    with ray_runtime(settings.ray_address, settings.workers):
        return train_xgboost_ray(train, valid, features, categorical, workers=settings.train_ray_workers, **kwargs)
