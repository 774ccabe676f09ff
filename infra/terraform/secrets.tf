# Secret containers only: their values are never in this repository nor in Terraform state.
# An operator sets each value once (`aws secretsmanager put-secret-value --secret-id <name>
# --secret-string file://...`); CD copies them into the namespace's Kubernetes Secrets.
locals {
  secrets = {
    pii_key                  = "HMAC key for pseudonymising identifiers (CREDITRISK_PII_KEY); rotating it re-keys every pseudonym"
    serve_api_key            = "API key clients send as X-API-Key (CREDITRISK_SERVE_API_KEY)"
    dagster_db_password      = "password of the dagster role on the Dagster Postgres (run/event storage)"
    mlflow_backend_store_uri = "postgresql+psycopg2://... URI of the MLflow backend store, with its password"
    lake_catalog_dsn         = "postgres:... DuckLake catalog DSN with its password (CREDITRISK_LAKE_CATALOG)"
    alert_webhook_url        = "Slack-compatible alert webhook URL (CREDITRISK_ALERT_WEBHOOK_URL)"
  }
}

resource "aws_secretsmanager_secret" "pii_key" {
  name                    = "${local.name}/pii-key"
  description             = local.secrets.pii_key
  kms_key_id              = aws_kms_key.creditrisk.arn
  recovery_window_in_days = 30
}

resource "aws_secretsmanager_secret" "serve_api_key" {
  name                    = "${local.name}/serve-api-key"
  description             = local.secrets.serve_api_key
  kms_key_id              = aws_kms_key.creditrisk.arn
  recovery_window_in_days = 30
}

resource "aws_secretsmanager_secret" "dagster_db_password" {
  name                    = "${local.name}/dagster-db-password"
  description             = local.secrets.dagster_db_password
  kms_key_id              = aws_kms_key.creditrisk.arn
  recovery_window_in_days = 30
}

resource "aws_secretsmanager_secret" "mlflow_backend_store_uri" {
  name                    = "${local.name}/mlflow-backend-store-uri"
  description             = local.secrets.mlflow_backend_store_uri
  kms_key_id              = aws_kms_key.creditrisk.arn
  recovery_window_in_days = 30
}

resource "aws_secretsmanager_secret" "lake_catalog_dsn" {
  name                    = "${local.name}/lake-catalog-dsn"
  description             = local.secrets.lake_catalog_dsn
  kms_key_id              = aws_kms_key.creditrisk.arn
  recovery_window_in_days = 30
}

resource "aws_secretsmanager_secret" "alert_webhook_url" {
  name                    = "${local.name}/alert-webhook-url"
  description             = local.secrets.alert_webhook_url
  kms_key_id              = aws_kms_key.creditrisk.arn
  recovery_window_in_days = 30
}
