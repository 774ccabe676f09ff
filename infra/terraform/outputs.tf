output "data_bucket" {
  value = aws_s3_bucket.data.bucket
}

output "mlflow_artifacts_bucket" {
  value = aws_s3_bucket.mlflow_artifacts.bucket
}

output "kms_key_arn" {
  value = aws_kms_key.creditrisk.arn
}

output "ecr_repository_url" {
  value = aws_ecr_repository.creditrisk.repository_url
}

output "dagster_role_arn" {
  value = aws_iam_role.dagster.arn
}

output "serving_role_arn" {
  value = aws_iam_role.serving.arn
}

output "mlflow_role_arn" {
  value = aws_iam_role.mlflow.arn
}

output "github_deploy_role_arn" {
  value = aws_iam_role.github_deploy.arn
}

output "secret_names" {
  value = {
    pii_key                  = aws_secretsmanager_secret.pii_key.name
    serve_api_key            = aws_secretsmanager_secret.serve_api_key.name
    dagster_db_password      = aws_secretsmanager_secret.dagster_db_password.name
    mlflow_backend_store_uri = aws_secretsmanager_secret.mlflow_backend_store_uri.name
    lake_catalog_dsn         = aws_secretsmanager_secret.lake_catalog_dsn.name
    alert_webhook_url        = aws_secretsmanager_secret.alert_webhook_url.name
  }
}
