#!/usr/bin/env bash
# Copy the environment's secrets from AWS Secrets Manager (created by infra/terraform, values set
# by an operator) into the Kubernetes Secrets the workloads read. Values go through files in a
# private temp dir, never through command-line arguments or logs.
#   usage: infra/scripts/sync-k8s-secrets.sh <staging|production>
set -euo pipefail
env="${1:?usage: $0 <staging|production>}"
ns="creditrisk-${env}"
prefix="creditrisk-${env}"
umask 077
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT

fetch() {  # secret id -> file
  aws secretsmanager get-secret-value --secret-id "${prefix}/$1" --query SecretString --output text >"$dir/$2"
}
fetch pii-key CREDITRISK_PII_KEY
fetch serve-api-key CREDITRISK_SERVE_API_KEY
fetch lake-catalog-dsn CREDITRISK_LAKE_CATALOG
fetch alert-webhook-url CREDITRISK_ALERT_WEBHOOK_URL
fetch mlflow-backend-store-uri MLFLOW_BACKEND_STORE_URI
fetch dagster-db-password postgresql-password

kubectl -n "$ns" create secret generic creditrisk-secrets --dry-run=client -o yaml \
  --from-file="$dir/CREDITRISK_PII_KEY" --from-file="$dir/CREDITRISK_SERVE_API_KEY" \
  --from-file="$dir/CREDITRISK_LAKE_CATALOG" --from-file="$dir/CREDITRISK_ALERT_WEBHOOK_URL" \
  --from-file="$dir/MLFLOW_BACKEND_STORE_URI" | kubectl apply -f -
kubectl -n "$ns" create secret generic dagster-postgresql-secret --dry-run=client -o yaml \
  --from-file="$dir/postgresql-password" | kubectl apply -f -
echo "secrets synced into namespace $ns"
