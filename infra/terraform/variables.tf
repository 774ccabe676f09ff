variable "environment" {
  description = "staging or production"
  type        = string

  validation {
    condition     = contains(["staging", "production"], var.environment)
    error_message = "environment must be staging or production."
  }
}

variable "region" {
  description = "AWS region of every resource"
  type        = string
}

variable "owner" {
  description = "team accountable for the resources (tag Owner)"
  type        = string
}

variable "eks_oidc_provider_arn" {
  description = "ARN of the IAM OIDC provider of the (existing) EKS cluster, for IRSA"
  type        = string
}

variable "eks_oidc_provider_url" {
  description = "issuer URL of that provider without https:// (oidc.eks.<region>.amazonaws.com/id/<id>)"
  type        = string
}

variable "github_oidc_provider_arn" {
  description = "ARN of the IAM OIDC provider for token.actions.githubusercontent.com"
  type        = string
}

variable "github_repository" {
  description = "owner/name of the repository whose CD may push images and read deploy secrets"
  type        = string
}

variable "noncurrent_version_retention_days" {
  description = "days before S3 removes noncurrent object versions (bounds how long erased data survives)"
  type        = number
  default     = 30
}

variable "ecr_keep_images" {
  description = "number of images ECR keeps"
  type        = number
  default     = 50
}
