"""`superseller aws schedules` against moto: the same set as the Terraform, idempotent,
switchable, removable."""

import json

import pytest

from superseller.aws import schedules as aws
from superseller.aws.schedules import AwsSetupError, Clients

URL = "https://api.superseller.example"


@pytest.fixture
def clients(mocked_aws):
    return Clients.default()


def inventory(c: Clients) -> dict:
    bus = "superseller-jobs"
    buses = {b["Name"] for b in c.events.list_event_buses()["EventBuses"]}
    rules = c.events.list_rules(EventBusName=bus)["Rules"] if bus in buses else []
    return {
        "schedules": sorted(s["Name"] for s in c.scheduler.list_schedules()["Schedules"]),
        "rules": sorted(r["Name"] for r in rules),
        "targets": sorted(
            t["Id"]
            for r in rules
            for t in c.events.list_targets_by_rule(Rule=r["Name"], EventBusName=bus)["Targets"]
        ),
        "destinations": sorted(
            d["Name"] for d in c.events.list_api_destinations()["ApiDestinations"]
        ),
        "connections": sorted(x["Name"] for x in c.events.list_connections()["Connections"]),
        "queues": c.sqs.list_queues().get("QueueUrls", []),
        "alarms": sorted(a["AlarmName"] for a in c.cloudwatch.describe_alarms()["MetricAlarms"]),
    }


def test_apply_is_idempotent_and_wires_everything(clients):
    first = aws.apply(clients, URL, "k3y-0123456789")
    before = inventory(clients)
    second = aws.apply(clients, URL + "/", "k3y-0123456789")
    assert inventory(clients) == before and first == second
    # the runbook's name (shared/seeds/002: `--name superseller-daily-metrics-rebuild`)
    assert before["schedules"] == ["superseller-daily-metrics-rebuild", "superseller-sync"]
    assert len(before["queues"]) == 1 and before["connections"] == ["superseller-internal-key"]
    assert len(before["alarms"]) == 3

    s = clients.scheduler.get_schedule(Name="superseller-daily-metrics-rebuild")
    assert (s["ScheduleExpression"], s["ScheduleExpressionTimezone"], s["State"]) == (
        "cron(0 3 * * ? *)",
        "America/Sao_Paulo",
        "ENABLED",
    )
    assert s["Target"]["Arn"] == first["bus"]
    assert s["Target"]["RetryPolicy"] == aws.RETRY
    assert s["Target"]["DeadLetterConfig"]["Arn"] == first["dlq"]
    assert json.loads(s["Target"]["Input"]) == {"tenantId": "all"}

    dest = clients.events.describe_api_destination(Name="superseller-rebuild")
    assert dest["InvocationEndpoint"] == URL + "/api/v1/jobs/rebuild-daily-metrics"
    (target,) = clients.events.list_targets_by_rule(
        Rule="superseller-rebuild", EventBusName="superseller-jobs"
    )["Targets"]
    assert target["Arn"] == first["apiDestinations"]["rebuild"]
    assert target["InputPath"] == "$.detail" and target["RetryPolicy"] == aws.RETRY
    conn = clients.events.describe_connection(Name="superseller-internal-key")
    assert conn["AuthorizationType"] == "API_KEY"
    assert conn["AuthParameters"]["ApiKeyAuthParameters"]["ApiKeyName"] == "X-Internal-Key"


def test_disable_enable_and_delete(clients):
    aws.apply(clients, URL, "k3y-0123456789")
    aws.set_state(clients, False)
    assert {
        clients.scheduler.get_schedule(Name=n)["State"]
        for n in ("superseller-sync", "superseller-daily-metrics-rebuild")
    } == {"DISABLED"}
    aws.set_state(clients, True)
    assert clients.scheduler.get_schedule(Name="superseller-sync")["State"] == "ENABLED"
    aws.delete(clients)
    assert inventory(clients) == {
        "schedules": [],
        "rules": [],
        "targets": [],
        "destinations": [],
        "connections": [],
        "queues": [],
        "alarms": [],
    }
    aws.delete(clients)  # again: nothing left to remove, no error


def test_bad_input_is_refused(clients):
    with pytest.raises(AwsSetupError, match="HTTPS"):
        aws.apply(clients, "http://api.example", "k3y")
    with pytest.raises(AwsSetupError, match="INTERNAL_JOBS_KEY"):
        aws.apply(clients, URL, "")
    with pytest.raises(AwsSetupError, match="apply"):
        aws.set_state(clients, True)


def test_apply_renames_an_existing_rebuild_schedule(clients):
    """A set applied by an earlier version named the schedule `superseller-rebuild`: a new
    `apply` leaves one rebuild schedule, under the runbook's name, firing the same job."""
    aws.apply(clients, URL, "k3y-0123456789")
    new = clients.scheduler.get_schedule(Name="superseller-daily-metrics-rebuild")
    old = {
        f: new[f]
        for f in (
            "ScheduleExpression",
            "ScheduleExpressionTimezone",
            "FlexibleTimeWindow",
            "Target",
        )
    }
    clients.scheduler.delete_schedule(Name="superseller-daily-metrics-rebuild")
    clients.scheduler.create_schedule(Name="superseller-rebuild", State="ENABLED", **old)
    aws.set_state(clients, False)  # works on the old name before the migration, too
    assert clients.scheduler.get_schedule(Name="superseller-rebuild")["State"] == "DISABLED"

    aws.apply(clients, URL, "k3y-0123456789")
    assert inventory(clients)["schedules"] == [
        "superseller-daily-metrics-rebuild",
        "superseller-sync",
    ]
    s = clients.scheduler.get_schedule(Name="superseller-daily-metrics-rebuild")
    assert s["Target"] == old["Target"]
