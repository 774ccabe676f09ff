"""The baseline of bench/serving.py: plain FastAPI + uvicorn doing the same per-request work as the
Ray Serve app (strict validation, one vectorised score, TreeSHAP reason codes for the declined rows), no Ray.

Started by the benchmark as ``uvicorn bench.serving_fastapi:app --workers 2``; it reads the same
``CREDITRISK_*`` settings and serves the registry's champion.
"""

from __future__ import annotations

import json

from fastapi import FastAPI, Request, Response

from creditrisk_assets.modeling import registry
from creditrisk_assets.settings import Settings
from serving.models import load_scorer
from serving.schemas import RequestError, RequestParser

settings = Settings.from_env()
_client = registry.connect(settings.resolved_mlflow_uri, settings.mlflow_artifact_location)
scorer = load_scorer(settings, registry.alias_version(_client, registry.CHAMPION) or "", "champion")
parser = RequestParser(settings.serve_max_rows, settings.serve_max_body_bytes)
app = FastAPI()


@app.post("/v1/predict")
async def predict(request: Request) -> Response:
    try:
        rows, single = parser.parse(await request.body())
    except RequestError as exc:
        return Response(json.dumps(exc.body("")), status_code=exc.status, media_type="application/json")
    out = scorer.explain(rows, settings.serve_reason_codes)
    for o in out:
        o.update(model_name=scorer.info.name, model_version=scorer.info.version)
    body = out[0] if single else {"predictions": out}
    return Response(json.dumps(body), media_type="application/json")
