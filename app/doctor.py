"""``imgclf doctor``: read-only preflight checks of an AWS account for one stage, run before
``cdk deploy`` and before the first upload.

Every check gives one :class:`Check` line: ``ok``, ``FAIL`` (with a concrete fix), ``warn`` (could
not check, or a risk that does not block) or ``skip``. The functions take a boto3 session, or a
``client(service, region)`` factory, so that tests inject moto or botocore Stubber clients.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
)

from imgclf_core.ecr import ImageUri
from infra.config import StageConfig

from .aws_checks import (
    AWS_CONFIG,
    DENIED,
    FAIL,
    OK,
    SKIP,
    WARN,
    Check,
    ClientFactory,
    aws_error,
    credentials_problem,
    describe_stack,
    error_code,
    stack_outputs,
)

# aws-cdk-lib 2.x: DefaultStackSynthesizer's MIN_BOOTSTRAP_STACK_VERSION is 6 (every template gets a
# CheckBootstrapVersion rule that refuses 1-5). Used when there is no synthesized cdk.out to read
# the exact number from (its manifest.json gives requiresBootstrapStackVersion per stack).
MIN_BOOTSTRAP_VERSION = 6
BOOTSTRAP_PARAMETER = "/cdk-bootstrap/hnb659fds/version"
TOOLKIT_STACK = "CDKToolkit"


@dataclass(frozen=True)
class BootstrapRequirement:
    """The bootstrap version the stage's templates need, and the SSM parameter that holds it."""

    version: int = MIN_BOOTSTRAP_VERSION
    parameter: str = BOOTSTRAP_PARAMETER
    source: str = "aws-cdk-lib 2 default synthesizer"


def stack_names(stage: StageConfig) -> Dict[str, str]:
    """The stage's stack names by role (infra/stacks.py ``add_stage``)."""
    return {role: f"Imgclf-{stage.name}-{role}" for role in ("Data", "Serving", "Training")}


def bootstrap_requirement(assembly: Path, stage: StageConfig) -> BootstrapRequirement:
    """The highest ``requiresBootstrapStackVersion`` of the stage's artifacts in a synthesized
    cloud assembly (``cdk.out/manifest.json``), or the aws-cdk-lib minimum when there is none."""
    try:
        manifest = json.loads((assembly / "manifest.json").read_text())
        artifacts = manifest["artifacts"]
        assert isinstance(artifacts, dict)
    except (OSError, ValueError, KeyError, TypeError, AssertionError):
        return BootstrapRequirement()
    prefix = f"Imgclf-{stage.name}-"
    version, parameter = 0, BOOTSTRAP_PARAMETER
    for artifact_id, artifact in artifacts.items():
        properties = artifact.get("properties") if isinstance(artifact, dict) else None
        if not isinstance(properties, dict) or not str(properties.get("stackName", artifact_id)).startswith(prefix):
            continue
        required = properties.get("requiresBootstrapStackVersion")
        if isinstance(required, int) and required > version:
            version = required
            parameter = str(properties.get("bootstrapStackVersionSsmParameter") or BOOTSTRAP_PARAMETER)
    if not version:
        return BootstrapRequirement()
    return BootstrapRequirement(version, parameter, f"{assembly / 'manifest.json'}")


def check_identity(sts: Any, session_region: Optional[str], stage: StageConfig) -> List[Check]:
    """``sts:GetCallerIdentity``: the caller's account is the stage's, and the session's default
    region is the stage's region."""
    checks: List[Check] = []
    try:
        identity = sts.get_caller_identity()
    except (BotoCoreError, ClientError) as err:
        checks.append(aws_error("identity", err, "sts:GetCallerIdentity"))
    else:
        account = str(identity.get("Account", ""))
        arn = str(identity.get("Arn", ""))
        if account == stage.account:
            checks.append(Check("identity", OK, f"{arn} (account {account})"))
        else:
            checks.append(
                Check(
                    "identity",
                    FAIL,
                    f"the credentials are for account {account} ({arn}); stage {stage.name} is account {stage.account}",
                    f"use credentials for account {stage.account} (export AWS_PROFILE=<a profile of that account>), "
                    f"or set imgclf:stages.{stage.name}.account to {account} in cdk.json",
                )
            )
    fix = (
        f"export AWS_DEFAULT_REGION={stage.region} (or aws configure set region {stage.region}), "
        f"or set imgclf:stages.{stage.name}.region in cdk.json"
    )
    if not session_region:
        checks.append(Check("region", FAIL, "no default region is set", fix))
    elif session_region != stage.region:
        checks.append(
            Check(
                "region", FAIL, f"the session's region is {session_region}; stage {stage.name} is {stage.region}", fix
            )
        )
    else:
        checks.append(Check("region", OK, session_region))
    return checks


def missing_output(name: str, stack: Dict[str, Any], stack_name: str, output: str) -> Check:
    """The FAIL line of a deployed stack that lacks one of its outputs."""
    return Check(
        name,
        FAIL,
        f"stack {stack_name} ({stack.get('StackStatus')}) has no {output} output",
        f"npx --yes aws-cdk@2 deploy {stack_name}",
    )


def check_bootstrap(ssm: Any, cloudformation: Any, stage: StageConfig, requirement: BootstrapRequirement) -> Check:
    """The bootstrap version parameter exists and is at least what the templates need, and the
    ``CDKToolkit`` stack exists in a usable state (``ssm:GetParameter``,
    ``cloudformation:DescribeStacks``)."""
    name = "CDK bootstrap"
    fix = f"npx --yes aws-cdk@2 bootstrap aws://{stage.account}/{stage.region}"
    try:
        value = ssm.get_parameter(Name=requirement.parameter)["Parameter"]["Value"]
    except ClientError as err:
        if error_code(err) != "ParameterNotFound":
            return aws_error(name, err, "ssm:GetParameter")
        value = None
    except BotoCoreError as err:
        return aws_error(name, err, "ssm:GetParameter")
    try:
        toolkit = describe_stack(cloudformation, TOOLKIT_STACK)
    except (BotoCoreError, ClientError) as err:
        return aws_error(name, err, "cloudformation:DescribeStacks")
    needed = f"needs {requirement.version} or newer (from {requirement.source})"
    if value is None:
        return Check(name, FAIL, f"{stage.account}/{stage.region} is not bootstrapped: no {requirement.parameter}", fix)
    try:
        version = int(value)
    except ValueError:
        return Check(name, FAIL, f"{requirement.parameter} is {value!r}, not a version number", fix)
    if version < requirement.version:
        return Check(name, FAIL, f"bootstrap version {version}; the templates {needed}", fix + " (upgrades it)")
    if toolkit is None:
        return Check(
            name,
            FAIL,
            f"bootstrap version {version}, but no {TOOLKIT_STACK} stack in {stage.region}",
            fix + " (or, if you bootstrapped with --toolkit-stack-name, check that stack)",
        )
    status = str(toolkit.get("StackStatus", ""))
    if status.endswith("_FAILED") or status in ("ROLLBACK_COMPLETE", "DELETE_COMPLETE"):
        return Check(
            name,
            FAIL,
            f"the {TOOLKIT_STACK} stack is {status}",
            f"see its events in the CloudFormation console, fix the cause, then {fix}",
        )
    return Check(name, OK, f"version {version} ({needed}), stack {TOOLKIT_STACK} {status}")


def quota_needs(stage: StageConfig) -> List[Tuple[str, str, int]]:
    """(line name, Service Quotas quota name, instances needed) for the stage's SageMaker usage."""
    training = stage.training
    if training.spot:
        train = ("quota training (spot)", f"{training.instance_type} for spot training job usage")
    else:
        train = ("quota training", f"{training.instance_type} for training job usage")
    return [
        (*train, training.instance_count),
        ("quota pack job", f"{training.pack_instance_type} for processing job usage", 1),
        ("quota endpoint", f"{stage.endpoint.instance_type} for endpoint usage", stage.endpoint.max_instances),
    ]


def list_quotas(service_quotas: Any, service: str = "sagemaker") -> Dict[str, Dict[str, Any]]:
    """Every applied quota of ``service`` by its QuotaName (``servicequotas:ListServiceQuotas``)."""
    quotas: Dict[str, Dict[str, Any]] = {}
    for page in service_quotas.get_paginator("list_service_quotas").paginate(ServiceCode=service):
        for quota in page.get("Quotas", []):
            quotas[str(quota.get("QuotaName", ""))] = dict(quota)
    return quotas


def check_quotas(service_quotas: Any, stage: StageConfig) -> List[Check]:
    """Each SageMaker quota the stage uses is at least the instances it needs."""
    needs = quota_needs(stage)
    try:
        quotas = list_quotas(service_quotas)
    except (BotoCoreError, ClientError) as err:
        return [aws_error(name, err, "servicequotas:ListServiceQuotas") for name, _, _ in needs]
    checks = []
    for name, quota_name, count in needs:
        quota = quotas.get(quota_name)
        if quota is None:
            checks.append(
                Check(
                    name,
                    WARN,
                    f"no quota named {quota_name!r} for sagemaker in {stage.region}",
                    "check Service Quotas > Amazon SageMaker in the console; the instance type may not exist in "
                    "this region",
                )
            )
            continue
        value = quota.get("Value")
        value = int(value) if isinstance(value, (int, float)) else 0
        detail = f"{quota_name}: {value} (needs {count})"
        if value >= count:
            checks.append(Check(name, OK, detail))
            continue
        code = quota.get("QuotaCode", "<quota code>")
        checks.append(
            Check(
                name,
                FAIL,
                detail,
                f"aws service-quotas request-service-quota-increase --service-code sagemaker --quota-code {code} "
                f"--desired-value {count} --region {stage.region}",
            )
        )
    return checks


def stage_images(stage: StageConfig) -> Dict[str, List[str]]:
    """Every container image URI the stage uses, with the scopes that use it."""
    images: Dict[str, List[str]] = {}
    for scope in ("training", "processing", "inference"):
        images.setdefault(stage.image_uri(scope), []).append(scope)
    return images


def check_image(client: ClientFactory, uri: str, scopes: Iterable[str], stage: StageConfig) -> Check:
    """The image exists (``ecr:DescribeImages``; when that is denied on the AWS-owned registry,
    ``ecr:BatchGetImage``, which pulls allow)."""
    name = "image " + "+".join(scopes)
    try:
        image = ImageUri.parse(uri)
    except ValueError:
        return Check(name, WARN, f"cannot check {uri}: not an ECR image URI")
    wanted = {"imageDigest" if image.tag.startswith("sha256:") else "imageTag": image.tag}
    request = {"registryId": image.account, "repositoryName": image.repository, "imageIds": [wanted]}
    missing_fix = (
        f"this container is not published in {stage.region}: pick a region that has it, or change the pinned "
        "version in training_code/imgclf_core/backends.py"
    )
    try:
        ecr = client("ecr", image.region)
        ecr.describe_images(**request)
    except ClientError as err:
        if error_code(err) in ("ImageNotFoundException", "RepositoryNotFoundException"):
            return Check(name, FAIL, f"{uri}: {error_code(err)}", missing_fix)
        if error_code(err) not in DENIED:
            return aws_error(name, err, "ecr:DescribeImages")
        try:
            found = ecr.batch_get_image(**request)
        except (BotoCoreError, ClientError) as second:
            problem = credentials_problem(second)
            if problem is not None:
                return Check(name, problem.status, problem.detail, problem.fix)
            return Check(
                name,
                WARN,
                f"cannot check {uri}: access denied on registry {image.account}",
                "SageMaker pulls it with its own role; allow ecr:DescribeImages to check it here",
            )
        if found.get("images"):
            return Check(name, OK, uri)
        reasons = {str(f.get("failureCode", "")) for f in found.get("failures", [])}
        if reasons & {"ImageNotFound", "RepositoryNotFound"} or not reasons:
            return Check(name, FAIL, f"{uri}: not found", missing_fix)
        return Check(name, WARN, f"cannot check {uri}: {', '.join(sorted(reasons))}")
    except BotoCoreError as err:
        return aws_error(name, err, "ecr:DescribeImages")
    return Check(name, OK, uri)


def check_alert_subscription(sns: Any, data_stack: Optional[Dict[str, Any]], stage: StageConfig) -> Check:
    """The stage's alert e-mail is subscribed to the ``AlertTopic`` output of the Data stack and
    confirmed (``sns:ListSubscriptionsByTopic``)."""
    name = "alert e-mail"
    if not stage.alert_email:
        return Check(name, SKIP, f"skipped: no alert_email in stage {stage.name}")
    if data_stack is None:
        return Check(name, SKIP, "skipped: not deployed yet")
    topic = stack_outputs(data_stack).get("AlertTopic")
    if not topic:
        return missing_output(name, data_stack, stack_names(stage)["Data"], "AlertTopic")
    email = stage.alert_email.lower()
    try:
        subscriptions = [
            s
            for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic)
            for s in page.get("Subscriptions", [])
            if s.get("Protocol") == "email" and str(s.get("Endpoint", "")).lower() == email
        ]
    except (BotoCoreError, ClientError) as err:
        return aws_error(name, err, "sns:ListSubscriptionsByTopic")
    resend = (
        f"aws sns subscribe --topic-arn {topic} --protocol email --notification-endpoint {stage.alert_email} "
        f"--region {stage.region}"
    )
    if not subscriptions:
        return Check(name, FAIL, f"{stage.alert_email} is not subscribed to {topic}", resend)
    if all(s.get("SubscriptionArn") == "PendingConfirmation" for s in subscriptions):
        return Check(
            name,
            FAIL,
            f"{stage.alert_email}: subscription pending confirmation",
            "open the e-mail 'AWS Notification - Subscription Confirmation' and click 'Confirm subscription'; "
            f"to send it again: {resend}",
        )
    return Check(name, OK, f"{stage.alert_email} confirmed on {topic}")


def check_api(serving_stack: Optional[Dict[str, Any]], stage: StageConfig, timeout: float = 10.0) -> Check:
    """The ``ApiUrl`` output of the Serving stack answers HTTP at all (an unsigned ``OPTIONS``:
    any status, 403 included, means that it is reachable)."""
    name = "API"
    if serving_stack is None:
        return Check(name, SKIP, "skipped: not deployed yet")
    stack = stack_names(stage)["Serving"]
    url = stack_outputs(serving_stack).get("ApiUrl")
    if not url:
        return missing_output(name, serving_stack, stack, "ApiUrl")
    request = urllib.request.Request(url, method="OPTIONS")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as err:
        status = err.code
    except (OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        return Check(
            name,
            FAIL,
            f"{url} is unreachable: {reason}",
            f"check the network, proxy and DNS; check that stack {stack} deployed completely "
            f"(aws cloudformation describe-stacks --stack-name {stack} --region {stage.region})",
        )
    return Check(name, OK, f"{url} answers (HTTP {status} to an unsigned OPTIONS)")


def _guard(name: str, run: Callable[[], List[Check]]) -> List[Check]:
    """Run a check; an unexpected error becomes a FAIL line instead of a traceback."""
    try:
        return run()
    except (BotoCoreError, ClientError) as err:
        return [aws_error(name, err, "read access")]
    except Exception as err:  # noqa: BLE001 - the doctor never ends in a traceback
        return [Check(name, FAIL, f"unexpected error: {type(err).__name__}: {err}", "report this as a bug")]


def run_checks(
    session: Any,
    stage: StageConfig,
    requirement: Optional[BootstrapRequirement] = None,
    client: Optional[ClientFactory] = None,
    http_timeout: float = 10.0,
) -> List[Check]:
    """Every preflight line for ``stage``. ``client(service, region)`` makes the boto3 clients
    (default: ``session.client`` with short timeouts); the calls are all read-only."""
    requirement = requirement or BootstrapRequirement()

    def default_client(service: str, region: str) -> Any:
        return session.client(service, region_name=region, config=AWS_CONFIG)

    make = client or default_client
    region = stage.region
    made: Dict[str, Any] = {}

    def get(service: str) -> Any:
        if service not in made:
            made[service] = make(service, region)
        return made[service]

    checks = _guard("identity", lambda: check_identity(get("sts"), session.region_name, stage))
    if any(c.name == "identity" and c.status == FAIL for c in checks):
        later = ["CDK bootstrap"] + [n for n, _, _ in quota_needs(stage)] + ["images", "alert e-mail", "API"]
        return checks + [Check(name, SKIP, "skipped: fix the identity line first") for name in later]
    checks += _guard("CDK bootstrap", lambda: [check_bootstrap(get("ssm"), get("cloudformation"), stage, requirement)])
    checks += _guard("quotas", lambda: check_quotas(get("service-quotas"), stage))
    checks += _guard(
        "images", lambda: [check_image(make, uri, scopes, stage) for uri, scopes in stage_images(stage).items()]
    )
    names = stack_names(stage)

    def deployed() -> List[Check]:
        stacks: Dict[str, Optional[Dict[str, Any]]] = {}
        lines: List[Check] = []
        for role in ("Data", "Serving"):
            try:
                stacks[role] = describe_stack(get("cloudformation"), names[role])
            except (BotoCoreError, ClientError) as err:
                lines.append(aws_error(f"stack {names[role]}", err, "cloudformation:DescribeStacks"))
                stacks[role] = None
        unread = "skipped: stack {} cannot be read"
        if stage.alert_email and stacks["Data"] is None and any(names["Data"] in c.name for c in lines):
            lines.append(Check("alert e-mail", SKIP, unread.format(names["Data"])))
        else:
            lines.append(check_alert_subscription(get("sns"), stacks["Data"], stage))
        if stacks["Serving"] is None and any(names["Serving"] in c.name for c in lines):
            lines.append(Check("API", SKIP, unread.format(names["Serving"])))
        else:
            lines.append(check_api(stacks["Serving"], stage, http_timeout))
        return lines

    return checks + _guard("deployment", deployed)


def exit_code(checks: Iterable[Check]) -> int:
    """1 when a line FAILs, 0 otherwise (warnings allowed)."""
    return 1 if any(c.status == FAIL for c in checks) else 0


def report(stage: StageConfig, checks: List[Check]) -> Dict[str, Any]:
    """The ``--json`` document."""
    return {
        "stage": stage.name,
        "account": stage.account,
        "region": stage.region,
        "ok": exit_code(checks) == 0,
        "checks": [c.as_dict() for c in checks],
    }
