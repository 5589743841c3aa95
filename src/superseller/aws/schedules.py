"""`superseller aws schedules apply | enable | disable | delete` with boto3, for users who
do not use Terraform. The same set as deploy/terraform, created or updated idempotently:

EventBridge Scheduler (cron in the sellers' time zone, 3 retries within 1 h, SQS DLQ)
-> a custom event bus -> a rule per job -> an API destination whose connection sends
`X-Internal-Key` -> SuperSeller's internal job endpoints. Alarms on failed invocations
and on a non-empty DLQ. (Scheduler cannot call HTTP itself: see docs/OPERATIONS.md.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from superseller.config import DEFAULT_TIMEZONE

RETRY = {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 3600}
# Each job's schedule is named `{name}-{schedule}`: the rebuild's is the runbook's
# `superseller-daily-metrics-rebuild`. Its rule, API destination and alarm keep `{name}-{key}`.
JOBS = {
    "sync": {
        "schedule": "sync",
        "cron": "cron(0 2 * * ? *)",
        "path": "/api/v1/jobs/sync-mercadolivre",
        "body": {"tenantId": "all", "daysBack": 30},
    },
    "rebuild": {
        "schedule": "daily-metrics-rebuild",
        "cron": "cron(0 3 * * ? *)",
        "path": "/api/v1/jobs/rebuild-daily-metrics",
        "body": {"tenantId": "all"},
    },
}

# Schedule names of earlier versions: `apply` replaces them by the current ones.
LEGACY_SCHEDULES = {"rebuild": "rebuild"}


def schedule_name(name: str, key: str) -> str:
    return f"{name}-{JOBS[key]['schedule']}"


class AwsSetupError(Exception):
    """A problem with the request, shown as is."""


@dataclass
class Clients:
    events: Any
    scheduler: Any
    sqs: Any
    iam: Any
    cloudwatch: Any

    @classmethod
    def default(cls) -> Clients:
        try:
            import boto3
        except ImportError:
            raise AwsSetupError("boto3 is not installed: pip install 'superseller[aws]'") from None
        return cls(*(boto3.client(n) for n in ("events", "scheduler", "sqs", "iam", "cloudwatch")))


def _exists(exc: Exception) -> bool:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    return code in ("ResourceAlreadyExistsException", "EntityAlreadyExists", "ConflictException")


def _missing(exc: Exception) -> bool:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    return code in (
        "ResourceNotFoundException",
        "NoSuchEntity",
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
    )


def _upsert(describe, create, update, args: dict) -> dict:
    """Update what exists (looked up by name first), else create it."""
    try:
        describe(Name=args["Name"])
    except Exception as exc:
        if not _missing(exc):
            raise
        return create(**args)
    return update(**args)


def _trust(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
            ],
        }
    )


def _role(c: Clients, name: str, service: str, policy: dict) -> str:
    try:
        arn = c.iam.create_role(RoleName=name, AssumeRolePolicyDocument=_trust(service))
    except Exception as exc:
        if not _exists(exc):
            raise
        arn = c.iam.get_role(RoleName=name)
    c.iam.put_role_policy(
        RoleName=name,
        PolicyName="superseller",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": policy}),
    )
    return arn["Role"]["Arn"]


def _schedule_args(
    name: str, job: dict, timezone: str, bus_arn: str, role_arn: str, dlq_arn: str, state: str
) -> dict:
    return dict(
        Name=name,
        ScheduleExpression=job["cron"],
        ScheduleExpressionTimezone=timezone,
        FlexibleTimeWindow={"Mode": "OFF"},
        State=state,
        Target={
            "Arn": bus_arn,
            "RoleArn": role_arn,
            "Input": json.dumps(job["body"]),
            "EventBridgeParameters": {"DetailType": job["key"], "Source": job["source"]},
            "RetryPolicy": RETRY,
            "DeadLetterConfig": {"Arn": dlq_arn},
        },
    )


def apply(
    c: Clients,
    api_url: str,
    key: str,
    *,
    name: str = "superseller",
    timezone: str = DEFAULT_TIMEZONE,
    enabled: bool = True,
) -> dict[str, Any]:
    """Create or update every part; running it again changes nothing."""
    if not api_url.startswith("https://"):
        raise AwsSetupError("API destinations call HTTPS endpoints only: give an https:// URL")
    if not key:
        raise AwsSetupError("no INTERNAL_JOBS_KEY to send: set it, or INTERNAL_JOBS_KEY_SECRET_ID")
    source, bus = f"{name}.scheduler", f"{name}-jobs"
    queue_url = c.sqs.create_queue(
        QueueName=f"{name}-jobs-dlq", Attributes={"MessageRetentionPeriod": "1209600"}
    )["QueueUrl"]
    dlq_arn = c.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    try:
        bus_arn = c.events.create_event_bus(Name=bus)["EventBusArn"]
    except Exception as exc:
        if not _exists(exc):
            raise
        bus_arn = c.events.describe_event_bus(Name=bus)["Arn"]
    auth = {"ApiKeyAuthParameters": {"ApiKeyName": "X-Internal-Key", "ApiKeyValue": key}}
    conn = dict(Name=f"{name}-internal-key", AuthorizationType="API_KEY", AuthParameters=auth)
    conn_arn = _upsert(
        c.events.describe_connection, c.events.create_connection, c.events.update_connection, conn
    )["ConnectionArn"]
    destinations, rules = {}, {}
    for k, job in JOBS.items():
        args = dict(
            Name=f"{name}-{k}",
            ConnectionArn=conn_arn,
            HttpMethod="POST",
            InvocationEndpoint=api_url.rstrip("/") + job["path"],
            InvocationRateLimitPerSecond=1,
        )
        destinations[k] = _upsert(
            c.events.describe_api_destination,
            c.events.create_api_destination,
            c.events.update_api_destination,
            args,
        )["ApiDestinationArn"]
    events_role = _role(
        c,
        f"{name}-api-destinations",
        "events.amazonaws.com",
        [
            {
                "Effect": "Allow",
                "Action": "events:InvokeApiDestination",
                "Resource": list(destinations.values()),
            }
        ],
    )
    for k in JOBS:
        rules[k] = c.events.put_rule(
            Name=f"{name}-{k}",
            EventBusName=bus,
            State="ENABLED",
            EventPattern=json.dumps({"source": [source], "detail-type": [k]}),
        )["RuleArn"]
        c.events.put_targets(
            Rule=f"{name}-{k}",
            EventBusName=bus,
            Targets=[
                {
                    "Id": f"{name}-{k}",
                    "Arn": destinations[k],
                    "RoleArn": events_role,
                    "InputPath": "$.detail",
                    "RetryPolicy": RETRY,
                    "DeadLetterConfig": {"Arn": dlq_arn},
                }
            ],
        )
    c.sqs.set_queue_attributes(
        QueueUrl=queue_url,
        Attributes={
            "Policy": json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "events.amazonaws.com"},
                            "Action": "sqs:SendMessage",
                            "Resource": dlq_arn,
                            "Condition": {"ArnEquals": {"aws:SourceArn": list(rules.values())}},
                        }
                    ],
                }
            )
        },
    )
    scheduler_role = _role(
        c,
        f"{name}-scheduler",
        "scheduler.amazonaws.com",
        [
            {"Effect": "Allow", "Action": "events:PutEvents", "Resource": bus_arn},
            {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": dlq_arn},
        ],
    )
    schedules = {}
    for k, job in JOBS.items():
        args = _schedule_args(
            schedule_name(name, k),
            {**job, "key": k, "source": source},
            timezone,
            bus_arn,
            scheduler_role,
            dlq_arn,
            "ENABLED" if enabled else "DISABLED",
        )
        try:
            schedules[k] = c.scheduler.create_schedule(**args)["ScheduleArn"]
        except Exception as exc:
            if not _exists(exc):
                raise
            schedules[k] = c.scheduler.update_schedule(**args)["ScheduleArn"]
        _drop_legacy_schedule(c, name, k)
        c.cloudwatch.put_metric_alarm(
            AlarmName=f"{name}-{k}-failed-invocations",
            Namespace="AWS/Events",
            MetricName="FailedInvocations",
            Statistic="Sum",
            Period=300,
            EvaluationPeriods=1,
            Threshold=0,
            ComparisonOperator="GreaterThanThreshold",
            TreatMissingData="notBreaching",
            Dimensions=[
                {"Name": "RuleName", "Value": f"{name}-{k}"},
                {"Name": "EventBusName", "Value": bus},
            ],
        )
    c.cloudwatch.put_metric_alarm(
        AlarmName=f"{name}-jobs-dlq-not-empty",
        Namespace="AWS/SQS",
        MetricName="ApproximateNumberOfMessagesVisible",
        Statistic="Maximum",
        Period=300,
        EvaluationPeriods=1,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="notBreaching",
        Dimensions=[{"Name": "QueueName", "Value": f"{name}-jobs-dlq"}],
    )
    return {
        "schedules": schedules,
        "apiDestinations": destinations,
        "rules": rules,
        "bus": bus_arn,
        "dlq": dlq_arn,
    }


def _drop_legacy_schedule(c: Clients, name: str, key: str) -> None:
    """The schedule under its old name fires the same job: remove it once the new exists."""
    old = LEGACY_SCHEDULES.get(key)
    if old is None or f"{name}-{old}" == schedule_name(name, key):
        return
    try:
        c.scheduler.delete_schedule(Name=f"{name}-{old}")
    except Exception as exc:
        if not _missing(exc):
            raise


def _get_schedule(c: Clients, name: str, key: str) -> dict:
    """The job's schedule under its current name, else under an older one (not applied yet)."""
    names = [schedule_name(name, key)]
    if key in LEGACY_SCHEDULES:
        names.append(f"{name}-{LEGACY_SCHEDULES[key]}")
    for n in names:
        try:
            return c.scheduler.get_schedule(Name=n)
        except Exception as exc:
            if not _missing(exc):
                raise
    raise AwsSetupError(f"schedule {names[0]} not found: run `apply` first")


def set_state(c: Clients, enabled: bool, name: str = "superseller") -> list[str]:
    """Switch both schedules on or off (everything else stays)."""
    done = []
    for k in JOBS:
        s = _get_schedule(c, name, k)
        keep = {
            f: s[f]
            for f in (
                "ScheduleExpression",
                "ScheduleExpressionTimezone",
                "FlexibleTimeWindow",
                "Target",
            )
            if f in s
        }
        c.scheduler.update_schedule(
            Name=s["Name"], State="ENABLED" if enabled else "DISABLED", **keep
        )
        done.append(s["Name"])
    return done


def delete(c: Clients, name: str = "superseller") -> list[str]:
    """Remove every part; parts already gone are skipped."""
    bus, removed = f"{name}-jobs", []

    def attempt(what: str, fn, **kwargs) -> None:
        try:
            fn(**kwargs)
            removed.append(what)
        except Exception as exc:
            if not _missing(exc):
                raise

    for k in JOBS:
        sched = schedule_name(name, k)
        attempt(f"schedule {sched}", c.scheduler.delete_schedule, Name=sched)
        if k in LEGACY_SCHEDULES:
            old = f"{name}-{LEGACY_SCHEDULES[k]}"
            attempt(f"schedule {old}", c.scheduler.delete_schedule, Name=old)
        attempt(
            f"targets of {name}-{k}",
            c.events.remove_targets,
            Rule=f"{name}-{k}",
            EventBusName=bus,
            Ids=[f"{name}-{k}"],
        )
        attempt(f"rule {name}-{k}", c.events.delete_rule, Name=f"{name}-{k}", EventBusName=bus)
        attempt(f"api destination {name}-{k}", c.events.delete_api_destination, Name=f"{name}-{k}")
    attempt("connection", c.events.delete_connection, Name=f"{name}-internal-key")
    attempt("event bus", c.events.delete_event_bus, Name=bus)
    for role in (f"{name}-scheduler", f"{name}-api-destinations"):
        attempt(
            f"policy of {role}", c.iam.delete_role_policy, RoleName=role, PolicyName="superseller"
        )
        attempt(f"role {role}", c.iam.delete_role, RoleName=role)
    c.cloudwatch.delete_alarms(
        AlarmNames=[f"{name}-{k}-failed-invocations" for k in JOBS] + [f"{name}-jobs-dlq-not-empty"]
    )
    try:
        url = c.sqs.get_queue_url(QueueName=f"{name}-jobs-dlq")["QueueUrl"]
        attempt("dead-letter queue", c.sqs.delete_queue, QueueUrl=url)
    except Exception as exc:
        if not _missing(exc):
            raise
    return removed
