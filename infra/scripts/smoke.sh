#!/usr/bin/env bash
# Smoke test of a deployed serving app: GET /v1/health must answer 200, and one POST
# /v1/predict of a known application id (features from the feature store) must answer 200 JSON.
#   usage: SMOKE_SK_ID_CURR=<id> [CREDITRISK_SERVE_API_KEY=...] infra/scripts/smoke.sh <base url>
set -euo pipefail
base="${1:?usage: $0 <base url, e.g. http://127.0.0.1:8000>}"
id="${SMOKE_SK_ID_CURR:?set SMOKE_SK_ID_CURR to an application id present in gold}"
auth=()
if [[ -n "${CREDITRISK_SERVE_API_KEY:-}" ]]; then auth=(-H "X-API-Key: ${CREDITRISK_SERVE_API_KEY}"); fi

for _ in $(seq 1 30); do
  if curl -fsS "${auth[@]}" "$base/v1/health" >/dev/null; then break; fi
  sleep 5
done
curl -fsS "${auth[@]}" "$base/v1/health"
echo
body="$(curl -fsS "${auth[@]}" -H 'Content-Type: application/json' -d "{\"sk_id_curr\": ${id}}" "$base/v1/predict")"
python3 -c 'import json, sys; json.loads(sys.argv[1]); print("predict ok:", sys.argv[1][:300])' "$body"
