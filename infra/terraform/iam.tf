# Least-privilege roles. Workloads on EKS assume theirs through IRSA (one Kubernetes service
# account each, in the environment's namespace); CD assumes its own through GitHub's OIDC.
# No Allow statement uses a wildcard action; the only Resource "*" is ecr:GetAuthorizationToken,
# which AWS does not scope to a resource.

data "aws_iam_policy_document" "irsa_dagster" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [var.eks_oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${var.eks_oidc_provider_url}:sub"
      values   = ["system:serviceaccount:${local.namespace}:dagster"]
    }

    condition {
      test     = "StringEquals"
      variable = "${var.eks_oidc_provider_url}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "irsa_serving" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [var.eks_oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${var.eks_oidc_provider_url}:sub"
      values   = ["system:serviceaccount:${local.namespace}:creditrisk-serving"]
    }

    condition {
      test     = "StringEquals"
      variable = "${var.eks_oidc_provider_url}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "irsa_mlflow" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [var.eks_oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${var.eks_oidc_provider_url}:sub"
      values   = ["system:serviceaccount:${local.namespace}:creditrisk-mlflow"]
    }

    condition {
      test     = "StringEquals"
      variable = "${var.eks_oidc_provider_url}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "github_deploy_trust" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [var.github_oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:aud"
      values   = ["sts.amazonaws.com"]
    }

    # only jobs of this repository running in its GitHub environment of the same name (cd.yml,
    # approval-gated in production) or in `<environment>-nightly` (nightly.yml)
    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:sub"
      values = [
        "repo:${var.github_repository}:environment:${var.environment}",
        "repo:${var.github_repository}:environment:${var.environment}-nightly",
      ]
    }
  }
}

# Dagster (code server and run pods): the whole data bucket — ingest, silver/gold lake files,
# reports, compute logs, retention and erasure (deletes) — and the secrets the pipeline needs.
data "aws_iam_policy_document" "dagster" {
  statement {
    sid       = "ListData"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [aws_s3_bucket.data.arn]
  }

  statement {
    sid       = "ReadWriteData"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = ["${aws_s3_bucket.data.arn}/*"]
  }

  statement {
    sid       = "UseKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.creditrisk.arn]
  }

  statement {
    sid     = "ReadPipelineSecrets"
    actions = ["secretsmanager:GetSecretValue"]
    resources = [
      aws_secretsmanager_secret.pii_key.arn,
      aws_secretsmanager_secret.lake_catalog_dsn.arn,
      aws_secretsmanager_secret.alert_webhook_url.arn,
    ]
  }
}

# Serving: reads gold features (lake/) and writes the prediction log; nothing else.
data "aws_iam_policy_document" "serving" {
  statement {
    sid       = "ListLakeAndLog"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.data.arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["lake/*", "serving/prediction_log/*"]
    }
  }

  statement {
    sid       = "ReadLake"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.data.arn}/lake/*"]
  }

  statement {
    sid       = "WritePredictionLog"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.data.arn}/serving/prediction_log/*"]
  }

  statement {
    sid       = "UseKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.creditrisk.arn]
  }

  statement {
    sid     = "ReadServingSecrets"
    actions = ["secretsmanager:GetSecretValue"]
    resources = [
      aws_secretsmanager_secret.serve_api_key.arn,
      aws_secretsmanager_secret.pii_key.arn,
      aws_secretsmanager_secret.lake_catalog_dsn.arn,
    ]
  }
}

# MLflow server: the artefact bucket only (clients go through the server's artefact proxy).
data "aws_iam_policy_document" "mlflow" {
  statement {
    sid       = "ListArtifacts"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [aws_s3_bucket.mlflow_artifacts.arn]
  }

  statement {
    sid       = "ReadWriteArtifacts"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = ["${aws_s3_bucket.mlflow_artifacts.arn}/*"]
  }

  statement {
    sid       = "UseKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.creditrisk.arn]
  }

  statement {
    sid       = "ReadBackendStoreSecret"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.mlflow_backend_store_uri.arn]
  }
}

# CD (GitHub Actions): push the image, find the cluster, read the secrets it syncs into the
# namespace's Kubernetes Secrets. Kubernetes permissions come from the creditrisk:deployers group.
data "aws_iam_policy_document" "github_deploy" {
  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid = "EcrPush"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:CompleteLayerUpload",
      "ecr:DescribeImages",
      "ecr:DescribeImageScanFindings",
      "ecr:GetDownloadUrlForLayer",
      "ecr:InitiateLayerUpload",
      "ecr:PutImage",
      "ecr:UploadLayerPart",
    ]
    resources = [aws_ecr_repository.creditrisk.arn]
  }

  statement {
    sid       = "UseKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.creditrisk.arn]
  }

  statement {
    sid       = "DescribeCluster"
    actions   = ["eks:DescribeCluster"]
    resources = ["arn:aws:eks:${var.region}:${data.aws_caller_identity.current.account_id}:cluster/${local.name}"]
  }

  statement {
    sid     = "ReadDeploySecrets"
    actions = ["secretsmanager:GetSecretValue"]
    resources = [
      aws_secretsmanager_secret.pii_key.arn,
      aws_secretsmanager_secret.serve_api_key.arn,
      aws_secretsmanager_secret.dagster_db_password.arn,
      aws_secretsmanager_secret.mlflow_backend_store_uri.arn,
      aws_secretsmanager_secret.lake_catalog_dsn.arn,
      aws_secretsmanager_secret.alert_webhook_url.arn,
    ]
  }
}

resource "aws_iam_role" "dagster" {
  name               = "${local.name}-dagster"
  assume_role_policy = data.aws_iam_policy_document.irsa_dagster.json
}

resource "aws_iam_role_policy" "dagster" {
  name   = "${local.name}-dagster"
  role   = aws_iam_role.dagster.id
  policy = data.aws_iam_policy_document.dagster.json
}

resource "aws_iam_role" "serving" {
  name               = "${local.name}-serving"
  assume_role_policy = data.aws_iam_policy_document.irsa_serving.json
}

resource "aws_iam_role_policy" "serving" {
  name   = "${local.name}-serving"
  role   = aws_iam_role.serving.id
  policy = data.aws_iam_policy_document.serving.json
}

resource "aws_iam_role" "mlflow" {
  name               = "${local.name}-mlflow"
  assume_role_policy = data.aws_iam_policy_document.irsa_mlflow.json
}

resource "aws_iam_role_policy" "mlflow" {
  name   = "${local.name}-mlflow"
  role   = aws_iam_role.mlflow.id
  policy = data.aws_iam_policy_document.mlflow.json
}

resource "aws_iam_role" "github_deploy" {
  name               = "${local.name}-github-deploy"
  assume_role_policy = data.aws_iam_policy_document.github_deploy_trust.json
}

resource "aws_iam_role_policy" "github_deploy" {
  name   = "${local.name}-github-deploy"
  role   = aws_iam_role.github_deploy.id
  policy = data.aws_iam_policy_document.github_deploy.json
}
