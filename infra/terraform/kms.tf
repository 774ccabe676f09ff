# One customer-managed key per environment for S3, Secrets Manager and ECR.
resource "aws_kms_key" "creditrisk" {
  description             = "creditrisk ${var.environment}: S3 data, MLflow artefacts, secrets, images"
  enable_key_rotation     = true
  deletion_window_in_days = 30
}

resource "aws_kms_alias" "creditrisk" {
  name          = "alias/${local.name}"
  target_key_id = aws_kms_key.creditrisk.key_id
}
