# `terraform test` against a mocked provider: the seed's commands, without an AWS account.
#   terraform apply -var="enable_scheduler=true" -var="scheduler_tenant_id=<TENANT_ID>"
#   terraform destroy -target=aws_scheduler_schedule.daily_metrics_rebuild
# Run from deploy/terraform: terraform init && terraform test -var=... (see tests/test_terraform.py).

mock_provider "aws" {
  # The provider checks ARN syntax: mocked values must look like ARNs.
  mock_resource "aws_cloudwatch_event_bus" {
    defaults = { arn = "arn:aws:events:us-east-2:123456789012:event-bus/superseller-jobs" }
  }
  mock_resource "aws_cloudwatch_event_connection" {
    defaults = { arn = "arn:aws:events:us-east-2:123456789012:connection/superseller-internal-key/1" }
  }
  mock_resource "aws_cloudwatch_event_api_destination" {
    defaults = { arn = "arn:aws:events:us-east-2:123456789012:api-destination/superseller/1" }
  }
  mock_resource "aws_cloudwatch_event_rule" {
    defaults = { arn = "arn:aws:events:us-east-2:123456789012:rule/superseller-jobs/superseller" }
  }
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::123456789012:role/superseller" }
  }
  mock_resource "aws_sqs_queue" {
    defaults = { arn = "arn:aws:sqs:us-east-2:123456789012:superseller-jobs-dlq" }
  }
}

variables {
  api_url                     = "https://api.superseller.example"
  internal_jobs_key_secret_id = "prod/INTERNAL_JOBS_KEY"
}

run "seed_apply" {
  command = apply

  assert {
    condition     = length(aws_scheduler_schedule.daily_metrics_rebuild) == (var.enable_scheduler ? 1 : 0)
    error_message = "enable_scheduler decides whether the rebuild schedule exists"
  }
  assert {
    condition     = !var.enable_scheduler || aws_scheduler_schedule.daily_metrics_rebuild[0].name == "superseller-daily-metrics-rebuild"
    error_message = "the rebuild schedule carries the runbook's name"
  }
  assert {
    condition     = !var.enable_scheduler || jsondecode(aws_scheduler_schedule.daily_metrics_rebuild[0].target[0].input).tenantId == var.scheduler_tenant_id
    error_message = "the rebuild is sent for scheduler_tenant_id"
  }
  assert {
    condition     = !var.enable_scheduler || jsondecode(aws_scheduler_schedule.mercadolivre_sync[0].target[0].input).tenantId == var.scheduler_tenant_id
    error_message = "the sync is sent for scheduler_tenant_id"
  }
}

run "destroy_target_address" {
  command = plan
  plan_options {
    target = [aws_scheduler_schedule.daily_metrics_rebuild]
  }
  assert {
    condition     = aws_scheduler_schedule.daily_metrics_rebuild[0].name == "superseller-daily-metrics-rebuild"
    error_message = "the runbook's -target address names the rebuild schedule"
  }
}

run "scheduler_off" {
  command = plan
  variables {
    enable_scheduler = false
  }
  assert {
    condition     = length(aws_scheduler_schedule.daily_metrics_rebuild) == 0 && length(aws_scheduler_schedule.mercadolivre_sync) == 0
    error_message = "enable_scheduler=false leaves no schedule"
  }
}
