"""One line of a preflight check, and how an AWS error becomes one (``imgclf doctor``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, Optional

from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectionError,
    CredentialRetrievalError,
    NoCredentialsError,
    PartialCredentialsError,
    SSOError,
    TokenRetrievalError,
)

OK, FAIL, WARN, SKIP = "ok", "FAIL", "warn", "skip"
DENIED = ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError")
BAD_CREDENTIALS = (
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "InvalidToken",
)
CREDENTIALS_FIX = "run aws configure or set AWS_PROFILE"
AWS_CONFIG = Config(connect_timeout=5, read_timeout=15, retries={"max_attempts": 2, "mode": "standard"})

ClientFactory = Callable[[str, str], Any]


@dataclass(frozen=True)
class Check:
    """One line of the preflight table."""

    name: str
    status: str
    detail: str
    fix: str = ""

    def as_dict(self) -> Dict[str, str]:
        return asdict(self)


def error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def error_message(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Message", "")) or error_code(err)


def credentials_problem(err: Exception) -> Optional[Check]:
    """A FAIL line when ``err`` means that no check can run: no credentials, rejected or expired
    credentials, or no connection to AWS; None for any other error."""
    if isinstance(err, (NoCredentialsError, PartialCredentialsError)):
        return Check("identity", FAIL, "no AWS credentials", CREDENTIALS_FIX)
    if isinstance(err, (TokenRetrievalError, SSOError, CredentialRetrievalError)):
        return Check(
            "identity", FAIL, f"the credentials cannot be loaded: {err}", "aws sso login, or " + CREDENTIALS_FIX
        )
    if isinstance(err, ClientError) and error_code(err) in BAD_CREDENTIALS:
        return Check(
            "identity",
            FAIL,
            f"the credentials were rejected: {error_code(err)}: {error_message(err)}",
            "refresh them (aws sso login, or new access keys), or " + CREDENTIALS_FIX,
        )
    if isinstance(err, ConnectionError):
        return Check("identity", FAIL, f"cannot reach AWS: {err}", "check the network connection and any HTTPS proxy")
    return None


def aws_error(name: str, err: Exception, permission: str) -> Check:
    """The line for an AWS call that failed: warn when access is denied (the check cannot run),
    FAIL otherwise."""
    problem = credentials_problem(err)
    if problem is not None:
        return Check(name, problem.status, problem.detail, problem.fix)
    if isinstance(err, ClientError) and error_code(err) in DENIED:
        return Check(
            name, WARN, f"cannot check: access denied ({error_message(err)})", f"allow {permission} to check this"
        )
    if isinstance(err, ClientError):
        return Check(
            name, FAIL, f"{error_code(err)}: {error_message(err)}", f"needs {permission}; retry, or see the message"
        )
    return Check(name, FAIL, f"{type(err).__name__}: {err}", "retry; see the message")


def describe_stack(cloudformation: Any, name: str) -> Optional[Dict[str, Any]]:
    """The stack's description, or None when it does not exist."""
    try:
        stacks = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except ClientError as err:
        if error_code(err) == "ValidationError" and "does not exist" in error_message(err):
            return None
        raise
    return dict(stacks[0]) if stacks else None


def stack_outputs(stack: Dict[str, Any]) -> Dict[str, str]:
    return {str(o["OutputKey"]): str(o.get("OutputValue", "")) for o in stack.get("Outputs", [])}
