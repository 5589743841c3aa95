# EventBridge Scheduler cannot call an HTTP endpoint itself, so each schedule puts an event
# on a bus (a templated target, with the time zone and DST handling only Scheduler has);
# a rule on that bus sends the event's detail to an API destination, whose connection adds
# the X-Internal-Key header. Failures are retried, then kept in an SQS dead-letter queue.

locals {
  jobs = {
    sync = {
      cron = var.sync_cron
      path = "/api/v1/jobs/sync-mercadolivre"
      body = { tenantId = var.scheduler_tenant_id, daysBack = 30 }
    }
    rebuild = {
      cron = var.rebuild_cron
      path = "/api/v1/jobs/rebuild-daily-metrics"
      body = { tenantId = var.scheduler_tenant_id } # no dates: the API rebuilds the trailing 30 local days
    }
  }
  source = "${var.name}.scheduler"
}

data "aws_secretsmanager_secret_version" "internal_key" {
  secret_id = var.internal_jobs_key_secret_id
}

resource "aws_sqs_queue" "dlq" {
  name                      = "${var.name}-jobs-dlq"
  message_retention_seconds = 1209600
}

resource "aws_cloudwatch_event_bus" "jobs" {
  name = "${var.name}-jobs"
}

resource "aws_cloudwatch_event_connection" "internal" {
  name               = "${var.name}-internal-key"
  authorization_type = "API_KEY"
  auth_parameters {
    api_key {
      key   = "X-Internal-Key"
      value = data.aws_secretsmanager_secret_version.internal_key.secret_string
    }
  }
}

resource "aws_cloudwatch_event_api_destination" "job" {
  for_each                         = local.jobs
  name                             = "${var.name}-${each.key}"
  invocation_endpoint              = "${trimsuffix(var.api_url, "/")}${each.value.path}"
  http_method                      = "POST"
  invocation_rate_limit_per_second = 1
  connection_arn                   = aws_cloudwatch_event_connection.internal.arn
}

resource "aws_cloudwatch_event_rule" "job" {
  for_each       = local.jobs
  name           = "${var.name}-${each.key}"
  event_bus_name = aws_cloudwatch_event_bus.jobs.name
  event_pattern = jsonencode({
    source      = [local.source]
    detail-type = [each.key]
  })
}

resource "aws_cloudwatch_event_target" "job" {
  for_each       = local.jobs
  rule           = aws_cloudwatch_event_rule.job[each.key].name
  event_bus_name = aws_cloudwatch_event_bus.jobs.name
  target_id      = "${var.name}-${each.key}"
  arn            = aws_cloudwatch_event_api_destination.job[each.key].arn
  role_arn       = aws_iam_role.events.arn
  input_path     = "$.detail" # the schedule's input is the request body

  retry_policy {
    maximum_retry_attempts       = 3
    maximum_event_age_in_seconds = 3600
  }
  dead_letter_config {
    arn = aws_sqs_queue.dlq.arn
  }
}

# One resource per schedule, at the addresses the runbook names:
#   terraform destroy -target=aws_scheduler_schedule.daily_metrics_rebuild
# Both exist only with enable_scheduler = true (the seed's switch); `enabled` pauses them.
resource "aws_scheduler_schedule" "mercadolivre_sync" {
  count                        = var.enable_scheduler ? 1 : 0
  name                         = "${var.name}-sync"
  schedule_expression          = local.jobs.sync.cron
  schedule_expression_timezone = var.timezone
  state                        = var.enabled ? "ENABLED" : "DISABLED"

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_cloudwatch_event_bus.jobs.arn
    role_arn = aws_iam_role.scheduler.arn
    input    = jsonencode(local.jobs.sync.body)

    eventbridge_parameters {
      detail_type = "sync"
      source      = local.source
    }
    retry_policy {
      maximum_retry_attempts       = 3
      maximum_event_age_in_seconds = 3600
    }
    dead_letter_config {
      arn = aws_sqs_queue.dlq.arn
    }
  }
}

resource "aws_scheduler_schedule" "daily_metrics_rebuild" {
  count                        = var.enable_scheduler ? 1 : 0
  name                         = "${var.name}-daily-metrics-rebuild" # the seed's name
  schedule_expression          = local.jobs.rebuild.cron
  schedule_expression_timezone = var.timezone
  state                        = var.enabled ? "ENABLED" : "DISABLED"

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_cloudwatch_event_bus.jobs.arn
    role_arn = aws_iam_role.scheduler.arn
    input    = jsonencode(local.jobs.rebuild.body)

    eventbridge_parameters {
      detail_type = "rebuild"
      source      = local.source
    }
    retry_policy {
      maximum_retry_attempts       = 3
      maximum_event_age_in_seconds = 3600
    }
    dead_letter_config {
      arn = aws_sqs_queue.dlq.arn
    }
  }
}

# State written before the split (one for_each resource) moves without a re-create of
# the sync schedule; the rebuild schedule is re-created under its new name.
moved {
  from = aws_scheduler_schedule.job["sync"]
  to   = aws_scheduler_schedule.mercadolivre_sync[0]
}

moved {
  from = aws_scheduler_schedule.job["rebuild"]
  to   = aws_scheduler_schedule.daily_metrics_rebuild[0]
}
