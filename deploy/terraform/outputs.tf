output "schedule_arns" {
  value = {
    sync    = one(aws_scheduler_schedule.mercadolivre_sync[*].arn)
    rebuild = one(aws_scheduler_schedule.daily_metrics_rebuild[*].arn)
  }
}

output "dlq_url" {
  value = aws_sqs_queue.dlq.id
}
