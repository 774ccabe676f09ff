"""creditrisk: a credit-risk (PD) MLOps platform as a Dagster asset graph."""

import warnings

# Single-run backfill policies are a beta Dagster API the project relies on knowingly; its warning would
# bury the demo's and the CLI's output. Deprecations and supersessions are never hidden.
warnings.filterwarnings("ignore", message=r".*is currently in beta.*")
