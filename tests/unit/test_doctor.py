"""`imgclf doctor`: the preflight lines against moto (STS, SSM, SNS) and botocore Stubbers
(CloudFormation, Service Quotas, ECR on the AWS-owned registry, an unconfirmed SNS
subscription), and the API check against a local HTTP server or a closed port."""

from __future__ import annotations

import datetime
import json
import os
import socket
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple
from unittest import mock

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws  # before any boto3 session: moto hooks sessions as they are created

from app.doctor import (
    FAIL,
    OK,
    SKIP,
    WARN,
    BootstrapRequirement,
    Check,
    bootstrap_requirement,
    exit_code,
    quota_needs,
    run_checks,
    stage_images,
)
from infra.config import StageConfig, parse_stage
from tests.http_stub import http_stub

ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"
EMAIL = "ops@example.com"
RAW_STAGE: Dict[str, Any] = {
    "account": ACCOUNT,
    "region": REGION,
    "training": {"instance_type": "ml.p3.2xlarge", "spot": True},
    "endpoint": {"instance_type": "ml.m5.xlarge", "min_instances": 1, "max_instances": 2},
    "alert_email": EMAIL,
}
STAGE = parse_stage("dev", RAW_STAGE)
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


class Session:
    """A boto3 session whose clients come from moto, except the stubbed ones in ``stubs``."""

    def __init__(self, region: Optional[str] = REGION, stubs: Optional[Dict[str, Any]] = None) -> None:
        self.region_name = region
        self.stubs = stubs or {}

    def client(self, service: str, region_name: str, config: Any = None) -> Any:
        return self.stubs.get(service) or REAL.client(service, region_name=region_name, config=config)


REAL = boto3.Session(region_name=REGION, **CREDENTIALS)  # one session: service models load once


def stubbed(service: str) -> Tuple[Any, Stubber]:
    client = REAL.client(service, region_name=REGION)
    stub = Stubber(client)
    stub.activate()
    return client, stub


def quota(name: str, value: float, code: str = "L-0001") -> Dict[str, Any]:
    return {"ServiceCode": "sagemaker", "QuotaName": name, "QuotaCode": code, "Value": value}


def quotas_client(values: Optional[Dict[str, float]] = None) -> Any:
    """Service Quotas answering in two pages: the stage's quotas at ``values`` (default: enough)."""
    needs = {name: float(count) for _, name, count in quota_needs(STAGE)}
    needs.update(values or {})
    client, stub = stubbed("service-quotas")
    first = [quota("ml.p3.2xlarge for training job usage", 0.0, "L-TRAIN")]
    second = [quota(name, value, f"L-{i}") for i, (name, value) in enumerate(needs.items()) if value >= 0]
    stub.add_response("list_service_quotas", {"Quotas": first, "NextToken": "page2"}, {"ServiceCode": "sagemaker"})
    stub.add_response("list_service_quotas", {"Quotas": second}, {"ServiceCode": "sagemaker", "NextToken": "page2"})
    return client


def ecr_client(errors: Optional[Dict[str, str]] = None, batch: Optional[Dict[str, Any]] = None) -> Any:
    """ECR answering DescribeImages for each image of the stage, in order; ``errors`` maps a
    scope to an error code, and ``batch`` gives the BatchGetImage answer after an AccessDenied."""
    client, stub = stubbed("ecr")
    for uri, scopes in stage_images(STAGE).items():
        registry, _, path = uri.partition(".dkr.ecr.us-east-1.amazonaws.com/")
        repository, _, tag = path.partition(":")
        params = {"registryId": registry, "repositoryName": repository, "imageIds": [{"imageTag": tag}]}
        code = (errors or {}).get(scopes[0])
        if code is None:
            stub.add_response("describe_images", {"imageDetails": [{"imageTags": [tag]}]}, params)
            continue
        stub.add_client_error("describe_images", code, http_status_code=400, expected_params=params)
        if code == "AccessDeniedException":
            if batch is None:
                stub.add_client_error("batch_get_image", code, http_status_code=400, expected_params=params)
            else:
                stub.add_response("batch_get_image", batch, params)
    return client


@pytest.fixture()
def aws() -> Iterator[None]:
    env = {"AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    with mock.patch.dict(os.environ, env), mock_aws():
        yield


class _Handler(BaseHTTPRequestHandler):
    def do_OPTIONS(self) -> None:  # API Gateway with IAM auth: 403 Missing Authentication Token
        body = b'{"message":"Missing Authentication Token"}'
        self.send_response(403)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def api_url() -> Iterator[str]:
    with http_stub(_Handler) as url:
        yield f"{url}/v1/"


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1/"


def bootstrap(version: str = "21", name: str = "/cdk-bootstrap/hnb659fds/version") -> None:
    boto3.client("ssm", region_name=REGION).put_parameter(Name=name, Value=version, Type="String")


def cloudformation_client(toolkit: bool = True, topic: Optional[str] = None, api: Optional[str] = None) -> Any:
    """CloudFormation answering DescribeStacks for CDKToolkit, then the Data and Serving stacks
    (moto's CloudFormation needs openapi-spec-validator, which this environment lacks)."""
    client, stub = stubbed("cloudformation")
    stacks = [("CDKToolkit", {} if toolkit else None)]
    stacks.append(("Imgclf-dev-Data", {"AlertTopic": topic} if topic else None))
    stacks.append(("Imgclf-dev-Serving", {"ApiUrl": api} if api else None))
    for name, outputs in stacks:
        if outputs is None:
            message = f"Stack with id {name} does not exist"
            stub.add_client_error("describe_stacks", "ValidationError", message, expected_params={"StackName": name})
            continue
        stack = {
            "StackName": name,
            "CreationTime": datetime.datetime(2024, 1, 1),
            "StackStatus": "CREATE_COMPLETE",
            "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()],
        }
        stub.add_response("describe_stacks", {"Stacks": [stack]}, {"StackName": name})
    return client


def deploy(api: str, subscribe: bool = True) -> Any:
    """The alert topic (with the e-mail subscribed), and CloudFormation that shows the Data stack
    with its AlertTopic output and the Serving stack with ``api`` as ApiUrl."""
    sns = boto3.client("sns", region_name=REGION)
    topic = sns.create_topic(Name="imgclf-dev-alerts")["TopicArn"]
    if subscribe:
        sns.subscribe(TopicArn=topic, Protocol="email", Endpoint=EMAIL)
    return cloudformation_client(topic=topic, api=api)


def checks_of(
    stage: StageConfig = STAGE,
    region: Optional[str] = REGION,
    requirement: Optional[BootstrapRequirement] = None,
    **stubs: Any,
) -> Dict[str, Check]:
    stubs.setdefault("service_quotas", quotas_client())
    stubs.setdefault("ecr", ecr_client())
    stubs.setdefault("cloudformation", cloudformation_client())
    session = Session(region, {k.replace("_", "-"): v for k, v in stubs.items()})
    lines = run_checks(session, stage, requirement, http_timeout=2.0)
    names = [c.name for c in lines]
    assert len(names) == len(set(names)), names
    return {c.name: c for c in lines}


def statuses(checks: Dict[str, Check]) -> Dict[str, str]:
    return {name: c.status for name, c in checks.items()}


def failing(checks: Dict[str, Check]) -> List[str]:
    return [name for name, c in checks.items() if c.status == FAIL]


def test_a_deployed_stage_passes(aws: None, api_url: str) -> None:
    bootstrap()
    checks = checks_of(cloudformation=deploy(api_url))
    assert set(statuses(checks).values()) == {OK}, checks
    assert list(checks) == [
        "identity",
        "region",
        "CDK bootstrap",
        "quota training (spot)",
        "quota pack job",
        "quota endpoint",
        "image training",
        "image processing",
        "image inference",
        "alert e-mail",
        "API",
    ]
    assert "HTTP 403" in checks["API"].detail
    assert "ml.p3.2xlarge for spot training job usage: 1 (needs 1)" in checks["quota training (spot)"].detail
    assert exit_code(checks.values()) == 0


def test_before_deploy_the_stack_lines_are_skipped(aws: None) -> None:
    bootstrap()
    checks = checks_of()
    assert checks["alert e-mail"].status == SKIP and checks["alert e-mail"].detail == "skipped: not deployed yet"
    assert checks["API"].status == SKIP and checks["API"].detail == "skipped: not deployed yet"
    assert failing(checks) == [] and exit_code(checks.values()) == 0


def test_wrong_account(aws: None) -> None:
    stage = parse_stage("dev", dict(RAW_STAGE, account="111111111111"))
    checks = checks_of(stage)
    identity = checks["identity"]
    assert identity.status == FAIL
    assert "account 123456789012" in identity.detail and "stage dev is account 111111111111" in identity.detail
    assert identity.fix.startswith("use credentials for account 111111111111")
    assert checks["CDK bootstrap"].status == SKIP
    assert exit_code(checks.values()) == 1


def test_wrong_region(aws: None) -> None:
    bootstrap()
    checks = checks_of(region="eu-west-1")
    assert failing(checks) == ["region"]
    assert "eu-west-1" in checks["region"].detail
    assert "export AWS_DEFAULT_REGION=us-east-1" in checks["region"].fix
    assert checks_of(region=None)["region"].detail == "no default region is set"


def test_not_bootstrapped(aws: None) -> None:
    checks = checks_of(cloudformation=cloudformation_client(toolkit=False))
    line = checks["CDK bootstrap"]
    assert failing(checks) == ["CDK bootstrap"]
    assert "is not bootstrapped" in line.detail
    assert line.fix == f"npx --yes aws-cdk@2 bootstrap aws://{ACCOUNT}/{REGION}"


def test_old_bootstrap(aws: None) -> None:
    bootstrap(version="5")
    line = checks_of()["CDK bootstrap"]
    assert line.status == FAIL and "bootstrap version 5" in line.detail and "needs 6 or newer" in line.detail
    assert line.fix.startswith(f"npx --yes aws-cdk@2 bootstrap aws://{ACCOUNT}/{REGION}")


def test_bootstrap_parameter_without_the_toolkit_stack(aws: None) -> None:
    bootstrap()
    line = checks_of(cloudformation=cloudformation_client(toolkit=False))["CDK bootstrap"]
    assert line.status == FAIL and "no CDKToolkit stack" in line.detail


def test_the_bootstrap_version_comes_from_the_assembly(aws: None, tmp_path: Path) -> None:
    properties = {"requiresBootstrapStackVersion": 21, "bootstrapStackVersionSsmParameter": "/cdk-bootstrap/x/version"}
    artifacts = {
        "Imgclf-dev-Data": {"type": "aws:cloudformation:stack", "properties": properties},
        "Imgclf-dev-Data.assets": {"type": "cdk:asset-manifest", "properties": {"requiresBootstrapStackVersion": 6}},
        "Imgclf-prod-Data": {"type": "aws:cloudformation:stack", "properties": {"requiresBootstrapStackVersion": 30}},
        "Tree": {"type": "cdk:tree", "properties": {"file": "tree.json"}},
    }
    (tmp_path / "manifest.json").write_text(json.dumps({"version": "48.0.0", "artifacts": artifacts}))
    requirement = bootstrap_requirement(tmp_path, STAGE)
    assert (requirement.version, requirement.parameter) == (21, "/cdk-bootstrap/x/version")
    assert bootstrap_requirement(tmp_path / "missing", STAGE) == BootstrapRequirement()

    bootstrap("20", "/cdk-bootstrap/x/version")
    line = checks_of(requirement=requirement)["CDK bootstrap"]
    assert line.status == FAIL and "bootstrap version 20" in line.detail and "needs 21" in line.detail


def test_a_quota_of_zero(aws: None) -> None:
    bootstrap()
    name = "ml.m5.xlarge for endpoint usage"
    checks = checks_of(service_quotas=quotas_client({name: 0.0}))
    line = checks["quota endpoint"]
    assert failing(checks) == ["quota endpoint"]
    assert line.detail == f"{name}: 0 (needs 2)"
    assert "aws service-quotas request-service-quota-increase --service-code sagemaker" in line.fix
    assert "--desired-value 2 --region us-east-1" in line.fix


def test_a_missing_quota_is_a_warning(aws: None) -> None:
    bootstrap()
    checks = checks_of(service_quotas=quotas_client({"ml.m5.xlarge for processing job usage": -1}))
    assert checks["quota pack job"].status == WARN and failing(checks) == []


def test_quotas_access_denied_is_a_warning(aws: None) -> None:
    bootstrap()
    client, stub = stubbed("service-quotas")
    stub.add_client_error("list_service_quotas", "AccessDeniedException", http_status_code=400)
    checks = checks_of(service_quotas=client)
    lines = [c for name, c in checks.items() if name.startswith("quota")]
    assert len(lines) == 3 and all(c.status == WARN for c in lines)
    assert "servicequotas:ListServiceQuotas" in lines[0].fix


def test_a_missing_image(aws: None) -> None:
    bootstrap()
    checks = checks_of(ecr=ecr_client({"inference": "ImageNotFoundException"}))
    line = checks["image inference"]
    assert failing(checks) == ["image inference"]
    assert "mxnet-inference:1.9.0-cpu-py38: ImageNotFoundException" in line.detail
    assert "not published in us-east-1" in line.fix


def test_an_image_on_a_registry_that_denies_describe(aws: None) -> None:
    bootstrap()
    checks = checks_of(ecr=ecr_client({"training": "AccessDeniedException"}))
    assert checks["image training"].status == WARN and "cannot check" in checks["image training"].detail
    pulled = {"images": [{"imageManifest": "{}"}], "failures": []}
    checks = checks_of(ecr=ecr_client({"training": "AccessDeniedException"}, batch=pulled))
    assert checks["image training"].status == OK
    gone = {"images": [], "failures": [{"failureCode": "ImageNotFound"}]}
    checks = checks_of(ecr=ecr_client({"training": "AccessDeniedException"}, batch=gone))
    assert checks["image training"].status == FAIL


def test_an_unconfirmed_subscription(aws: None, api_url: str) -> None:
    bootstrap()
    cloudformation = deploy(api_url, subscribe=False)
    topic = boto3.client("sns", region_name=REGION).list_topics()["Topics"][0]["TopicArn"]
    sns, stub = stubbed("sns")
    pending = {"SubscriptionArn": "PendingConfirmation", "Protocol": "email", "Endpoint": EMAIL, "TopicArn": topic}
    stub.add_response("list_subscriptions_by_topic", {"Subscriptions": [pending]}, {"TopicArn": topic})
    line = checks_of(sns=sns, cloudformation=cloudformation)["alert e-mail"]
    assert line.status == FAIL and "pending confirmation" in line.detail
    assert "Confirm subscription" in line.fix and f"aws sns subscribe --topic-arn {topic}" in line.fix


def test_no_subscription_and_no_alert_email(aws: None, api_url: str) -> None:
    bootstrap()
    line = checks_of(cloudformation=deploy(api_url, subscribe=False))["alert e-mail"]
    assert line.status == FAIL and "is not subscribed" in line.detail
    stage = parse_stage("dev", {k: v for k, v in RAW_STAGE.items() if k != "alert_email"})
    assert checks_of(stage)["alert e-mail"].status == SKIP


def test_an_unreachable_api(aws: None) -> None:
    bootstrap()
    url = closed_port_url()
    checks = checks_of(cloudformation=deploy(url))
    line = checks["API"]
    assert failing(checks) == ["API"]
    assert line.detail.startswith(f"{url} is unreachable")
    assert "Imgclf-dev-Serving" in line.fix


def test_expired_credentials() -> None:
    sts, stub = stubbed("sts")
    stub.add_client_error(
        "get_caller_identity", "ExpiredToken", "The security token included in the request is expired"
    )
    checks = checks_of(sts=sts)
    assert checks["identity"].status == FAIL and "ExpiredToken" in checks["identity"].detail
    assert "aws sso login" in checks["identity"].fix
    assert checks["API"].status == SKIP


# the command line


def write_cdk_json(tmp_path: Path, stages: Optional[Dict[str, Any]] = None) -> Path:
    path = tmp_path / "cdk.json"
    path.write_text(json.dumps({"app": "true", "context": {"imgclf:stages": stages or {"dev": RAW_STAGE}}}))
    return path


def run_cli(cli: Callable[..., Tuple[int, str, str]], session: Any, *args: str) -> Tuple[int, str, str]:
    with mock.patch("app.cli.doctor._session", return_value=session):
        return cli("doctor", *args)


def test_cli_table_and_exit_code(aws: None, api_url: str, tmp_path: Path, cli: Callable[..., Any]) -> None:
    bootstrap()
    stubs = {"service-quotas": quotas_client(), "ecr": ecr_client(), "cloudformation": deploy(api_url)}
    session = Session(stubs=stubs)
    code, out, err = run_cli(cli, session, "--stage", "dev", "--cdk-json", str(write_cdk_json(tmp_path)))
    assert code == 0, out + err
    assert out.splitlines()[0] == f"imgclf doctor: stage dev (account {ACCOUNT}, region {REGION})"
    assert out.splitlines()[-1] == "ready"
    assert "ok    CDK bootstrap" in out

    stubs = {"service-quotas": quotas_client(), "ecr": ecr_client(), "cloudformation": cloudformation_client()}
    session = Session(region="eu-west-1", stubs=stubs)
    code, out, err = run_cli(cli, session, "--cdk-json", str(write_cdk_json(tmp_path)))  # the only stage
    assert code == 1
    assert "FAIL  region" in out and "fix: export AWS_DEFAULT_REGION=us-east-1" in out
    assert out.splitlines()[-1] == "1 FAIL, 0 warn: fix the FAIL lines first"


def test_cli_json(aws: None, tmp_path: Path, cli: Callable[..., Any]) -> None:
    stubs = {"service-quotas": quotas_client(), "ecr": ecr_client(), "cloudformation": cloudformation_client()}
    session = Session(stubs=stubs)
    code, out, err = run_cli(cli, session, "--stage", "dev", "--cdk-json", str(write_cdk_json(tmp_path)), "--json")
    assert code == 1 and err == ""
    document = json.loads(out)
    assert {k: document[k] for k in ("stage", "account", "region", "ok")} == {
        "stage": "dev",
        "account": ACCOUNT,
        "region": REGION,
        "ok": False,
    }
    lines = {line["name"]: line for line in document["checks"]}
    assert set(lines["CDK bootstrap"]) == {"name", "status", "detail", "fix"}
    assert lines["CDK bootstrap"]["status"] == "FAIL" and lines["identity"]["status"] == "ok"
    assert lines["API"] == {"name": "API", "status": "skip", "detail": "skipped: not deployed yet", "fix": ""}


def test_cli_without_credentials(tmp_path: Path, cli: Callable[..., Any]) -> None:
    env = {
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_DEFAULT_REGION": REGION,
    }
    gone = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE")
    clean = {k: v for k, v in os.environ.items() if k not in gone and not k.startswith("AWS_CONTAINER_")}
    with mock.patch.dict(os.environ, dict(clean, **env), clear=True):
        code, out, err = cli("doctor", "--stage", "dev", "--cdk-json", str(write_cdk_json(tmp_path)))
    assert code == 1
    assert "Traceback" not in out + err
    assert "FAIL  identity" in out and "no AWS credentials" in out
    assert "fix: run aws configure or set AWS_PROFILE" in out


def test_cli_usage_errors(tmp_path: Path, cli: Callable[..., Any]) -> None:
    cdk_json = write_cdk_json(tmp_path, {"dev": RAW_STAGE, "prod": RAW_STAGE})
    code, _, err = cli("doctor", "--stage", "qa", "--cdk-json", str(cdk_json))
    assert code == 2 and "no stage 'qa'" in err
    code, _, err = cli("doctor", "--cdk-json", str(cdk_json))
    assert code == 2 and "--stage is required" in err and "dev, prod" in err
    bad = write_cdk_json(tmp_path, {"dev": dict(RAW_STAGE, account="12")})
    code, _, err = cli("doctor", "--cdk-json", str(bad))
    assert code == 2 and "imgclf:stages.dev.account" in err
    code, _, err = cli("doctor", "--cdk-json", str(tmp_path / "missing.json"))
    assert code == 2 and "cannot read" in err
