terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.80"
    }
  }

  # Partial configuration: `terraform init -backend-config=envs/<env>.backend.hcl` (state bucket,
  # key, region, dynamodb_table, encrypt = true) — one state per environment.
  backend "s3" {}
}

provider "aws" {
  region = var.region

  default_tags {
    tags = local.tags
  }
}
