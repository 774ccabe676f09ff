data "aws_caller_identity" "current" {}

locals {
  name      = "creditrisk-${var.environment}"
  namespace = "creditrisk-${var.environment}"

  tags = {
    Project            = "creditrisk"
    Environment        = var.environment
    Owner              = var.owner
    ManagedBy          = "terraform"
    DataClassification = "confidential"
  }
}
