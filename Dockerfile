# syntax=docker/dockerfile:1
# One image, two roles, from the same pinned lock file as `make`:
#   default command   the Dagster code location (gRPC on :4000; also the image of K8sRunLauncher run pods)
#   `creditrisk serve` the Ray Serve app (HTTP on :8000, GET /v1/health); `mlflow server` for the tracking server
# Linted by hadolint in `make test` (tests/unit/test_infra.py); see infra/README.md for what was built here.
ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV UV_VERSION=0.13.9 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 UV_NO_CACHE=1
WORKDIR /app
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir uv==${UV_VERSION}
COPY requirements.lock pyproject.toml README.md ./
# bytecode compiled at build: the image sets PYTHONDONTWRITEBYTECODE=1, so nothing is compiled at run time
RUN /opt/venv/bin/uv pip sync --python /opt/venv/bin/python --compile-bytecode requirements.lock
COPY creditrisk_assets ./creditrisk_assets
COPY serving ./serving
COPY dbt_project ./dbt_project
COPY workspace.yaml ./
RUN /opt/venv/bin/uv pip install --python /opt/venv/bin/python --compile-bytecode --no-deps .
# dagster-dbt needs the manifest at import time: generate it at build time, not at start-up
WORKDIR /app/dbt_project
RUN /opt/venv/bin/dbt parse --profiles-dir . --quiet \
 && rm -rf logs

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 creditrisk \
 && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home --shell /usr/sbin/nologin creditrisk \
 && mkdir -p /data \
 && chown 10001:10001 /data
COPY --from=build /opt/venv /opt/venv
COPY --from=build --chown=10001:10001 /app /app
WORKDIR /app
# The commit this image is built from, recorded with every trained model (the build context has no
# .git): `docker build --build-arg GIT_SHA="$(git rev-parse HEAD)" .`; a missing or malformed SHA
# fails the build. Late, so a new commit rebuilds none of the layers above.
ARG GIT_SHA
RUN case "${GIT_SHA:-x}" in *[!0-9a-f]*) GIT_SHA="";; esac \
 && if [ "${#GIT_SHA}" -ne 40 ] && [ "${#GIT_SHA}" -ne 64 ]; then \
      echo "GIT_SHA must be a full commit SHA: docker build --build-arg GIT_SHA=\"\$(git rev-parse HEAD)\" ." >&2; exit 1; \
    fi \
 && printf '%s\n' "${GIT_SHA}" > /app/GIT_SHA
# No DAGSTER_HOME here: whoever runs Dagster sets it (the Helm chart, K8sRunLauncher's run pods), and
# CREDITRISK_ENV=production checks the dagster.yaml of a set DAGSTER_HOME, which serving pods must not have.
ENV PATH=/opt/venv/bin:$PATH \
    CREDITRISK_HOME=/data \
    CREDITRISK_SERVE_HOST=0.0.0.0 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER 10001:10001
EXPOSE 4000 8000
# Whichever role the container runs: the code server answers its gRPC health check, the
# serving app its HTTP one. (Kubernetes uses the probes in infra/k8s instead.)
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
  CMD ["/bin/sh", "-c", "dagster api grpc-health-check -p 4000 >/dev/null 2>&1 || python -c \"import urllib.request as u; u.urlopen('http://127.0.0.1:8000/v1/health', timeout=5)\""]
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "creditrisk_assets.definitions"]
