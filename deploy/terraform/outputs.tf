output "schedule_arns" {
  value = { for k, s in aws_scheduler_schedule.job : k => s.arn }
}

output "dlq_url" {
  value = aws_sqs_queue.dlq.id
}
