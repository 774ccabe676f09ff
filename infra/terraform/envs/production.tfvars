# production (account 222222222222 is a placeholder: put the real account's provider ARNs here)
environment              = "production"
region                   = "eu-west-1"
owner                    = "credit-risk-ml"
eks_oidc_provider_arn    = "arn:aws:iam::222222222222:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/REPLACE-ME"
eks_oidc_provider_url    = "oidc.eks.eu-west-1.amazonaws.com/id/REPLACE-ME"
github_oidc_provider_arn = "arn:aws:iam::222222222222:oidc-provider/token.actions.githubusercontent.com"
github_repository        = "creditrisk-dev/creditrisk"
noncurrent_version_retention_days = 30
