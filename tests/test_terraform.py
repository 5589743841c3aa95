"""deploy/terraform, checked offline: parsed with python-hcl2, every resource type one that
exists in hashicorp/aws, and the wiring Scheduler -> bus -> rule -> API destination ->
our own endpoints, with retries, a DLQ and alarms. `terraform fmt -check` where installed."""

import os
import shutil
import subprocess
from pathlib import Path

import hcl2
import pytest
from fastapi.routing import APIRoute

from superseller.api import internal
from superseller.jobs.cron import normalize_cron

TF = Path(__file__).resolve().parents[1] / "deploy" / "terraform"
# Registered by the provider (internal/service/*/service_package_gen.go, see
# shared/reference/aws-scheduling.md). aws_scheduler_connection and
# aws_scheduler_api_destination are not: the original's Terraform named them.
PROVIDER_TYPES = {
    "aws_scheduler_schedule",
    "aws_scheduler_schedule_group",
    "aws_cloudwatch_event_bus",
    "aws_cloudwatch_event_connection",
    "aws_cloudwatch_event_api_destination",
    "aws_cloudwatch_event_rule",
    "aws_cloudwatch_event_target",
    "aws_sqs_queue",
    "aws_sqs_queue_policy",
    "aws_iam_role",
    "aws_iam_role_policy",
    "aws_cloudwatch_metric_alarm",
}


def unquote(value):
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    if isinstance(value, dict):
        return {unquote(k): unquote(v) for k, v in value.items() if k != "__is_block__"}
    if isinstance(value, list):
        return [unquote(v) for v in value]
    return value


@pytest.fixture(scope="module")
def tf():
    blocks = {"resource": {}, "variable": {}, "locals": {}, "data": {}}
    for path in sorted(TF.glob("*.tf")):
        parsed = unquote(hcl2.load(path.open()))
        for entry in parsed.get("resource", []):
            for rtype, named in entry.items():
                for name, body in named.items():
                    blocks["resource"][(rtype, name)] = body
        for entry in parsed.get("variable", []):
            blocks["variable"].update(entry)
        for entry in parsed.get("locals", []):
            blocks["locals"].update(entry)
    return blocks


def one(block):
    assert isinstance(block, list) and len(block) == 1
    return block[0]


def test_only_resources_that_exist_in_the_provider(tf):
    types = {t for t, _ in tf["resource"]}
    assert types <= PROVIDER_TYPES, types - PROVIDER_TYPES
    assert not {"aws_scheduler_connection", "aws_scheduler_api_destination"} & types


def test_schedules_fire_in_sao_paulo_with_retries_and_a_dlq(tf):
    v = tf["variable"]
    assert v["timezone"]["default"] == "America/Sao_Paulo"
    assert v["rebuild_cron"]["default"] == "cron(0 3 * * ? *)"
    assert normalize_cron(v["rebuild_cron"]["default"]) == "0 3 * * *"  # we read it too
    assert normalize_cron(v["sync_cron"]["default"]) == "0 2 * * *"
    for name, key in (("mercadolivre_sync", "sync"), ("daily_metrics_rebuild", "rebuild")):
        s = tf["resource"][("aws_scheduler_schedule", name)]
        assert s["schedule_expression_timezone"] == "${var.timezone}"
        assert s["schedule_expression"] == f"${{local.jobs.{key}.cron}}"
        assert one(s["flexible_time_window"])["mode"] == "OFF"
        target = one(s["target"])
        assert target["arn"] == "${aws_cloudwatch_event_bus.jobs.arn}"
        assert one(target["retry_policy"]) == {
            "maximum_retry_attempts": 3,
            "maximum_event_age_in_seconds": 3600,
        }
        assert one(target["dead_letter_config"])["arn"] == "${aws_sqs_queue.dlq.arn}"
        # the rule on the bus matches this detail type and calls the job's endpoint
        assert one(target["eventbridge_parameters"])["detail_type"] == key


def test_the_seed_variables_and_destroy_address_exist(tf):
    """`terraform apply -var="enable_scheduler=true" -var="scheduler_tenant_id=…"` and
    `terraform destroy -target=aws_scheduler_schedule.daily_metrics_rebuild` (the seed's)."""
    v = tf["variable"]
    assert v["enable_scheduler"]["type"] == "bool"
    assert v["scheduler_tenant_id"]["default"] == "all"
    rebuild = tf["resource"][("aws_scheduler_schedule", "daily_metrics_rebuild")]
    assert rebuild["name"] == "${var.name}-daily-metrics-rebuild"
    assert rebuild["count"] == "${var.enable_scheduler ? 1 : 0}"
    jobs = tf["locals"]["jobs"]
    assert jobs["rebuild"]["body"]["tenantId"] == "${var.scheduler_tenant_id}"


def test_rules_send_the_body_to_our_endpoints_with_the_internal_key(tf):
    r = tf["resource"]
    conn = r[("aws_cloudwatch_event_connection", "internal")]
    assert conn["authorization_type"] == "API_KEY"
    key = one(one(conn["auth_parameters"])["api_key"])
    assert key["key"] == "X-Internal-Key"
    assert "aws_secretsmanager_secret_version" in key["value"]  # from the secret, not code
    dest = r[("aws_cloudwatch_event_api_destination", "job")]
    assert dest["connection_arn"] == "${aws_cloudwatch_event_connection.internal.arn}"
    assert dest["http_method"] == "POST"
    target = r[("aws_cloudwatch_event_target", "job")]
    assert target["arn"] == "${aws_cloudwatch_event_api_destination.job[each.key].arn}"
    assert target["input_path"] == "$.detail"
    assert one(target["dead_letter_config"])["arn"] == "${aws_sqs_queue.dlq.arn}"
    # The paths the API destinations call are real POST routes of our app.
    posts = {
        r.path for r in internal.router.routes if isinstance(r, APIRoute) and "POST" in r.methods
    }
    jobs = tf["locals"]["jobs"]
    assert {j["path"] for j in jobs.values()} <= posts
    # the API picks the dates
    assert jobs["rebuild"]["body"] == {"tenantId": "${var.scheduler_tenant_id}"}


def test_failures_raise_alarms(tf):
    r = tf["resource"]
    failed = r[("aws_cloudwatch_metric_alarm", "failed_invocations")]
    assert (failed["namespace"], failed["metric_name"]) == ("AWS/Events", "FailedInvocations")
    assert failed["treat_missing_data"] == "notBreaching"
    dlq = r[("aws_cloudwatch_metric_alarm", "dlq_not_empty")]
    assert dlq["metric_name"] == "ApproximateNumberOfMessagesVisible"
    policy = r[("aws_sqs_queue_policy", "dlq")]
    assert "events.amazonaws.com" in policy["policy"]


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")
def test_terraform_fmt():
    assert subprocess.run(["terraform", "fmt", "-check", "-recursive", str(TF)]).returncode == 0


# A filesystem mirror of hashicorp/aws (no registry access needed), where one is installed.
PLUGIN_MIRROR = Path(os.environ.get("TF_PLUGIN_MIRROR", "/opt/tf-plugins"))
SEED_TENANT = "935498cf-062c-41f2-bda1-982f1abd8c61"  # as in the seed's command


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")
def test_terraform_validate_and_the_seed_commands_against_a_mock_provider(tmp_path):
    """`terraform validate`, then deploy/terraform/tests/seed.tftest.hcl (mocked provider):
    the seed's apply variables, its -target address, and enable_scheduler=false."""
    if not (PLUGIN_MIRROR / "registry.terraform.io" / "hashicorp" / "aws").is_dir():
        pytest.skip(f"no hashicorp/aws provider mirror at {PLUGIN_MIRROR} (set TF_PLUGIN_MIRROR)")
    work = tmp_path / "terraform"
    shutil.copytree(TF, work, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"))
    rc = tmp_path / "terraformrc"
    rc.write_text(
        "provider_installation {\n  filesystem_mirror {\n"
        f'    path = "{PLUGIN_MIRROR}"\n    include = ["registry.terraform.io/*/*"]\n'
        "  }\n}\n"
    )
    env = {**os.environ, "TF_CLI_CONFIG_FILE": str(rc), "TF_IN_AUTOMATION": "1"}

    def tf(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["terraform", *args, "-no-color"],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    init = tf("init", "-backend=false", "-input=false")
    assert init.returncode == 0, init.stderr
    valid = tf("validate")
    assert valid.returncode == 0, valid.stdout + valid.stderr
    run = tf("test", "-var=enable_scheduler=true", f"-var=scheduler_tenant_id={SEED_TENANT}")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "3 passed, 0 failed" in run.stdout
