"""creditrisk: a credit-risk (PD) MLOps platform as a Dagster asset graph."""

import warnings

# Single-run backfill policies and last-update freshness checks are beta / superseded Dagster APIs
# the project relies on knowingly; their warnings would bury the demo's and the CLI's output.
warnings.filterwarnings("ignore", message=r".*(is currently in beta|is superseded).*")
