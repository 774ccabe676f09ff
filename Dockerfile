# syntax=docker/dockerfile:1
# One image: the Dagster code location (default command) and, with another command, the
# serving app. Dependencies come from the same pinned lock file as `make`.
FROM python:3.11.7-slim-bookworm AS build
ENV UV_VERSION=0.13.9 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir uv==${UV_VERSION}
COPY requirements.lock pyproject.toml README.md ./
RUN /opt/venv/bin/uv pip sync --python /opt/venv/bin/python requirements.lock
COPY creditrisk_assets ./creditrisk_assets
COPY serving ./serving
COPY dbt_project ./dbt_project
COPY workspace.yaml ./
RUN /opt/venv/bin/uv pip install --python /opt/venv/bin/python --no-deps . \
 && cd dbt_project && /opt/venv/bin/dbt parse --profiles-dir . --quiet

FROM python:3.11.7-slim-bookworm AS runtime
RUN groupadd --system --gid 10001 creditrisk && useradd --system --uid 10001 --gid creditrisk --home /app creditrisk
COPY --from=build --chown=creditrisk:creditrisk /opt/venv /opt/venv
COPY --from=build --chown=creditrisk:creditrisk /app /app
WORKDIR /app
ENV PATH=/opt/venv/bin:$PATH CREDITRISK_HOME=/data DAGSTER_HOME=/data/dagster_home PYTHONUNBUFFERED=1
RUN mkdir -p /data && chown creditrisk:creditrisk /data
USER creditrisk
EXPOSE 4000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["dagster", "api", "grpc-health-check", "-p", "4000"]
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "creditrisk_assets.definitions"]
