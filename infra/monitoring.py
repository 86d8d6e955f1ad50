"""The scheduled monitor of the endpoint's captured traffic (only with data capture on):
EventBridge Scheduler invokes the monitor function every ``monitoring.every_hours`` (its own
role, lambda:InvokeFunction on that function only), retrying an invocation that fails and
putting one it gives up on into a dead-letter queue (SSE-KMS with the stage key; the schedule's
role sends it), where a run that raised is kept too (the function's on-failure destination); the function compares the window's captures with the live model's baseline.json,
writes ``monitoring/<endpoint>/<until>/monitor.json`` and its page ``monitor.html`` and
publishes metrics in the stage's namespace. CloudWatch alarms on DriftDetected and on the
dead-letter queue alert the stage's topic; a dashboard shows the endpoint's traffic, latency and
errors beside drift and live accuracy."""

from __future__ import annotations

import json
from typing import List

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sns as sns
from constructs import Construct

from imgclf_core.capture import DEFAULT_VARIANT
from imgclf_core.environment import MonitorEnvironment
from imgclf_core.s3_layout import CAPTURES, MONITORING, TRAINING_JOBS, feedback_prefix, objects

from . import arns
from .config import StageConfig
from .dead_letters import FailedInvocations, dead_letter_alarm, dead_letter_queue
from .function import PipelineFunction
from .nag import acknowledge, s3_objects, wildcard_arn

SAGEMAKER = "AWS/SageMaker"
# the schedule's retry policy: an invocation that fails (throttled, the function unavailable) is
# retried this often within this age, then put into the dead-letter queue
RETRY_ATTEMPTS, MAX_EVENT_AGE_SECONDS = 3, 3600
# a run that raises is run once more (Lambda's asynchronous retry), then kept in the same queue
ASYNC_RETRY_ATTEMPTS = 1
# the monitor's metrics (lambdas/monitor/logic.py)
DRIFT_DETECTED, RECORDS, MEAN_CONFIDENCE, LIVE_ACCURACY = "DriftDetected", "Records", "MeanConfidence", "LiveAccuracy"


def rate(hours: int) -> str:
    """EventBridge Scheduler's rate expression (``rate(1 hour)``, ``rate(24 hours)``)."""
    return f"rate({hours} {'hour' if hours == 1 else 'hours'})"


class EndpointMonitor(Construct):
    """``self.function`` monitors ``stage.endpoint_name``, ``self.schedule`` runs it (what it
    could not deliver goes to ``self.dead_letters``, and ``self.dead_letter_alarm`` says so),
    ``self.alarm`` alerts on drift and ``self.dashboard`` shows it."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        stage: StageConfig,
        key: kms.IKey,
        datasets: s3.IBucket,
        artifacts: s3.IBucket,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, id)
        self._stage = stage
        self.namespace = stage.monitoring.namespace
        self.endpoint_name = stage.endpoint_name
        self.monitor = self._function(key, datasets, artifacts)
        self.function = self.monitor.function
        self.dead_letters = dead_letter_queue(self, "DeadLetters", key)
        # a run that fails (an error in the function, not a failed delivery) is retried once by
        # Lambda's asynchronous invocation, then recorded in the same queue with its error
        # (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html);
        # the function's role sends it
        self.function.configure_async_invoke(
            retry_attempts=ASYNC_RETRY_ATTEMPTS, on_failure=FailedInvocations(self.dead_letters, key)
        )
        self.schedule = self._schedule(key)
        self.alarm = self._alarm(topic)
        self.dead_letter_alarm = dead_letter_alarm(
            self,
            "DeadLetterAlarm",
            self.dead_letters,
            alarm_name=f"{stage.prefix}-monitor-dead-letters",
            description=f"{stage.prefix}-monitor: a monitor run failed, or EventBridge Scheduler could not "
            "invoke the monitor (the dead-letter queue holds each failed run with its error)",
            topic=topic,
        )
        self.dashboard_name = f"{stage.prefix}-endpoint"
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=self.dashboard_name,
            widgets=self._widgets(),
            default_interval=Duration.days(7),
        )

    def _function(self, key: kms.IKey, datasets: s3.IBucket, artifacts: s3.IBucket) -> PipelineFunction:
        stage = self._stage
        monitor = PipelineFunction(
            self,
            "MonitorEndpoint",
            handler="lambdas.monitor.handler.handler",
            key=key,
            timeout=Duration.minutes(15),
            memory_size=2048,
            environment=MonitorEnvironment(
                endpoint_name=stage.endpoint_name,
                artifact_bucket=artifacts.bucket_name,
                feedback_bucket=datasets.bucket_name,
                window_hours=stage.monitoring.window,
                metric_namespace=self.namespace,
            ).as_environment(),
        )
        function, role = monitor.function, monitor.role
        reads = {
            objects(TRAINING_JOBS): "It reads baseline.json from the live model's model.tar.gz.",
            objects(f"{CAPTURES}{stage.endpoint_name}/"): "It reads the endpoint's captures of the window.",
        }
        for pattern, reason in reads.items():
            artifacts.grant_read(function, pattern)
            acknowledge(role, s3_objects(artifacts, pattern), reason)
        feedback = objects(feedback_prefix(stage.endpoint_name))
        datasets.grant_read(function, feedback)
        acknowledge(role, s3_objects(datasets, feedback), "It reads the endpoint's ground-truth label files.")
        reports = objects(f"{MONITORING}{stage.endpoint_name}/")
        artifacts.grant_put(function, reports)
        acknowledge(role, s3_objects(artifacts, reports), "It writes one report and its page per run.")
        models = arns.sagemaker(self, "model", f"{stage.prefix}-*")
        configs = arns.sagemaker(self, "endpoint-config", f"{stage.prefix}-*")
        packages = arns.sagemaker(self, "model-package", f"{stage.model_package_group}/*")
        described = (
            ("sagemaker:DescribeEndpoint", arns.sagemaker(self, "endpoint", stage.endpoint_name)),
            ("sagemaker:DescribeEndpointConfig", configs),
            ("sagemaker:DescribeModel", models),
            ("sagemaker:DescribeModelPackage", packages),
        )
        for action, resource in described:
            function.add_to_role_policy(iam.PolicyStatement(actions=[action], resources=[resource]))
        for pattern, what in ((models, "models"), (configs, "endpoint configs"), (packages, "model packages")):
            acknowledge(role, wildcard_arn(self, pattern), f"The stage's {what}, named per deployment or version.")
        # PutMetricData has no resource-level permissions; the namespace condition confines it
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": self.namespace}},
            )
        )
        return monitor

    def _schedule(self, key: kms.IKey) -> scheduler.CfnSchedule:
        """Every ``every_hours`` hours, with the scheduled time as the run's clock. The schedule's
        role invokes the function and, once the retries are spent, sends the failed invocation
        to the dead-letter queue: EventBridge Scheduler delivers dead letters with the execution
        role (https://docs.aws.amazon.com/scheduler/latest/UserGuide/configuring-schedule-dlq.html),
        so the role needs sqs:SendMessage on the queue and, the queue being SSE-KMS, what a
        producer needs of its key, through SQS only: kms:GenerateDataKey and kms:Decrypt
        (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-key-management.html).
        The stage key's policy lets the account's IAM policies grant it; no service principal
        needs the key."""
        stage = self._stage
        self.scheduler_role = iam.Role(
            self,
            "SchedulerRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": Stack.of(self).account}}
            ),
            description="EventBridge Scheduler invokes the endpoint monitor",
        )
        self.scheduler_role.add_to_policy(
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[self.function.function_arn])
        )
        self.scheduler_role.add_to_policy(
            iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[self.dead_letters.queue_arn])
        )
        self.scheduler_role.add_to_policy(
            iam.PolicyStatement(
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"sqs.{Stack.of(self).region}.amazonaws.com"}},
            )
        )
        return scheduler.CfnSchedule(
            self,
            "Schedule",
            name=f"{stage.prefix}-monitor",
            description=f"imgclf {stage.name}: monitor {stage.endpoint_name}'s captured traffic",
            schedule_expression=rate(stage.monitoring.every_hours),
            schedule_expression_timezone="UTC",
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            state="ENABLED",
            target=scheduler.CfnSchedule.TargetProperty(
                arn=self.function.function_arn,
                role_arn=self.scheduler_role.role_arn,
                input=json.dumps({"time": "<aws.scheduler.scheduled-time>"}),
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                    maximum_event_age_in_seconds=MAX_EVENT_AGE_SECONDS, maximum_retry_attempts=RETRY_ATTEMPTS
                ),
                dead_letter_config=scheduler.CfnSchedule.DeadLetterConfigProperty(arn=self.dead_letters.queue_arn),
            ),
        )

    def _metric(self, name: str, statistic: str = "Maximum") -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=self.namespace,
            metric_name=name,
            dimensions_map={"EndpointName": self.endpoint_name},
            statistic=statistic,
            period=Duration.hours(min(self._stage.monitoring.every_hours, 24)),
        )

    def _alarm(self, topic: sns.ITopic) -> cloudwatch.Alarm:
        """DriftDetected >= 1 in the latest run; no run (missing data) keeps the state."""
        alarm = cloudwatch.Alarm(
            self,
            "DriftAlarm",
            alarm_name=f"{self._stage.prefix}-endpoint-drift",
            alarm_description=f"{self.endpoint_name}: the monitor found significant drift (see monitoring/ reports)",
            metric=self._metric(DRIFT_DETECTED),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.IGNORE,
        )
        alarm.add_alarm_action(actions.SnsAction(topic))
        alarm.add_ok_action(actions.SnsAction(topic))
        return alarm

    def _endpoint_metric(self, name: str, statistic: str) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=SAGEMAKER,
            metric_name=name,
            dimensions_map={"EndpointName": self.endpoint_name, "VariantName": DEFAULT_VARIANT},
            statistic=statistic,
            period=Duration.minutes(5),
        )

    def _widgets(self) -> List[List[cloudwatch.IWidget]]:
        traffic = cloudwatch.GraphWidget(
            title="Invocations and errors (per 5 minutes)",
            left=[
                self._endpoint_metric(n, "Sum") for n in ("Invocations", "Invocation4XXErrors", "Invocation5XXErrors")
            ],
            width=12,
        )
        latency = cloudwatch.GraphWidget(
            title="Model latency (microseconds)",
            left=[self._endpoint_metric("ModelLatency", s) for s in ("Average", "p90")],
            width=12,
        )
        drift = cloudwatch.GraphWidget(
            title="Drift (1 = significant) and captured records per run",
            left=[self._metric(DRIFT_DETECTED)],
            right=[self._metric(RECORDS, "Sum")],
            left_annotations=[cloudwatch.HorizontalAnnotation(value=1, label="drift")],
            width=12,
        )
        quality = cloudwatch.GraphWidget(
            title="Live accuracy (labelled) and mean confidence",
            left=[self._metric(LIVE_ACCURACY, "Average"), self._metric(MEAN_CONFIDENCE, "Average")],
            left_y_axis=cloudwatch.YAxisProps(min=0, max=1),
            width=12,
        )
        alarm = cloudwatch.AlarmStatusWidget(title="Drift alarm", alarms=[self.alarm], width=24)
        return [[traffic, latency], [drift, quality], [alarm]]
