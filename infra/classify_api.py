"""``POST /classify``: a REST API with binary image bodies, IAM auth (or a Cognito user pool),
throttling and access logs, in front of a proxy Lambda that checks each request before it
reaches the endpoint."""

from __future__ import annotations

import json

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from image_training.serving import IMAGE_TYPES
from imgclf_core.environment import ClassifyEnvironment
from imgclf_core.payload_limits import MAX_BODY_BYTES

from . import arns
from .config import API_AUTH
from .function import PipelineFunction
from .nag import acknowledge, managed_policy


def too_large_message() -> str:
    """The 413 error of a body that API Gateway refuses before the proxy sees it."""
    return f"the request is too large; send an image of at most {MAX_BODY_BYTES} bytes"


class ClassifyApi(Construct):
    """``POST /classify`` on the API ``api_name`` in front of the endpoint ``endpoint_name``:
    ``auth`` is ``iam`` or ``cognito``; ``rate_limit`` requests per second, with a burst of twice that."""

    def __init__(
        self, scope: Construct, id: str, *, key: kms.IKey, endpoint_name: str, api_name: str, auth: str, rate_limit: int
    ) -> None:
        super().__init__(scope, id)
        if auth not in API_AUTH:
            raise ValueError(f"auth {auth!r} is not one of {', '.join(API_AUTH)}")
        self.proxy = self._proxy(key, endpoint_name)
        self.api = self._rest_api(key, api_name, rate_limit)
        self.method = self._post_method(auth)
        self._acknowledge(auth)

    def _proxy(self, key: kms.IKey, endpoint_name: str) -> PipelineFunction:
        """The Lambda that checks each request and invokes the endpoint."""
        proxy = PipelineFunction(
            self,
            "Classify",
            handler="lambdas.classify.handler.handler",
            key=key,
            timeout=Duration.seconds(30),
            memory_size=512,
            environment=ClassifyEnvironment(
                endpoint_name=endpoint_name, max_body_bytes=MAX_BODY_BYTES
            ).as_environment(),
        )
        proxy.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:InvokeEndpoint"],
                resources=[arns.sagemaker(self, "endpoint", endpoint_name)],
            )
        )
        return proxy

    def _rest_api(self, key: kms.IKey, api_name: str, rate_limit: int) -> apigateway.RestApi:
        """The regional REST API with binary image bodies, throttling, access logs and tracing."""
        access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=logs.RetentionDays.SIX_MONTHS,
            encryption_key=key,
            removal_policy=RemovalPolicy.DESTROY,
        )
        api = apigateway.RestApi(
            self,
            "Api",
            rest_api_name=api_name,
            description="imgclf: classify an image (POST /classify with image/jpeg or image/png)",
            binary_media_types=list(IMAGE_TYPES),
            endpoint_types=[apigateway.EndpointType.REGIONAL],
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=RemovalPolicy.DESTROY,
            deploy_options=apigateway.StageOptions(
                stage_name="v1",
                throttling_rate_limit=rate_limit,
                throttling_burst_limit=rate_limit * 2,
                logging_level=apigateway.MethodLoggingLevel.ERROR,
                metrics_enabled=True,
                tracing_enabled=True,
                access_log_destination=apigateway.LogGroupLogDestination(access_logs),
                access_log_format=apigateway.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
            ),
        )
        # a body whose event Lambda cannot take (over about 4.5 MiB, base64-encoded) is refused
        # before the proxy runs: API Gateway answers with this instead of its own message
        api.add_gateway_response(
            "RequestTooLarge",
            type=apigateway.ResponseType.REQUEST_TOO_LARGE,
            status_code="413",
            templates={"application/json": json.dumps({"error": too_large_message()})},
        )
        return api

    def _post_method(self, auth: str) -> apigateway.Method:
        """POST /classify through the proxy, with a Content-Type required, under IAM
        authorization or a Cognito user pool (``self.user_pool``)."""
        validator = self.api.add_request_validator(
            "ContentTypeRequired", validate_request_parameters=True, validate_request_body=True
        )
        classify = self.api.root.add_resource("classify")
        integration = apigateway.LambdaIntegration(self.proxy.function, proxy=True)
        method_options = dict(
            request_validator=validator,
            request_parameters={"method.request.header.Content-Type": True},
        )
        if auth == "cognito":
            self.user_pool = cognito.UserPool(
                self,
                "Users",
                self_sign_up_enabled=False,
                password_policy=cognito.PasswordPolicy(
                    min_length=12,
                    require_digits=True,
                    require_lowercase=True,
                    require_uppercase=True,
                    require_symbols=True,
                ),
                mfa=cognito.Mfa.REQUIRED,
                mfa_second_factor=cognito.MfaSecondFactor(sms=False, otp=True),
                feature_plan=cognito.FeaturePlan.PLUS,
                standard_threat_protection_mode=cognito.StandardThreatProtectionMode.FULL_FUNCTION,
                removal_policy=RemovalPolicy.RETAIN,
            )
            self.user_pool.add_client("ApiClient", auth_flows=cognito.AuthFlow(user_srp=True))
            authorizer = apigateway.CognitoUserPoolsAuthorizer(self, "Authorizer", cognito_user_pools=[self.user_pool])
            return classify.add_method(
                "POST",
                integration,
                authorization_type=apigateway.AuthorizationType.COGNITO,
                authorizer=authorizer,
                **method_options,  # type: ignore[arg-type]
            )
        return classify.add_method(
            "POST",
            integration,
            authorization_type=apigateway.AuthorizationType.IAM,
            **method_options,  # type: ignore[arg-type]
        )

    def _acknowledge(self, auth: str) -> None:
        acknowledge(
            self.api,
            "AwsSolutions-APIG3",
            "A WAF web ACL is an account-level choice with its own costs; the API is authenticated "
            "(IAM or Cognito) and throttled per stage. docs/deploy.md shows how to attach one.",
        )
        acknowledge(
            self.api,
            managed_policy(self, "service-role/AmazonAPIGatewayPushToCloudWatchLogs"),
            "API Gateway's account-level CloudWatch role uses the AWS managed "
            "AmazonAPIGatewayPushToCloudWatchLogs policy, as API Gateway requires.",
        )
        if auth == "iam":
            acknowledge(
                self.api,
                "AwsSolutions-COG4",
                "The method uses IAM (SigV4) authorization; a Cognito authorizer is the api_auth=cognito option.",
            )

    @property
    def url(self) -> str:
        return self.api.url_for_path("/classify")

    def grant_invoke(self, grantee: iam.IGrantable) -> None:
        """IAM auth: let ``grantee`` call POST /classify."""
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["execute-api:Invoke"],
            resource_arns=[self.api.arn_for_execute_api("POST", "/classify")],
        )
