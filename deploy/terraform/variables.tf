variable "region" {
  description = "AWS region."
  type        = string
  default     = "us-east-2"
}

variable "name" {
  description = "Prefix of every resource."
  type        = string
  default     = "superseller"
}

variable "api_url" {
  description = "Public HTTPS base URL of SuperSeller's API, e.g. https://api.example.com."
  type        = string
  validation {
    condition     = startswith(var.api_url, "https://")
    error_message = "API destinations call HTTPS endpoints only."
  }
}

variable "internal_jobs_key_secret_id" {
  description = "Secrets Manager id of INTERNAL_JOBS_KEY (the value the connection sends as X-Internal-Key)."
  type        = string
}

variable "timezone" {
  description = "The sellers' time zone: schedules fire in its wall time, DST included."
  type        = string
  default     = "America/Sao_Paulo"
}

variable "sync_cron" {
  description = "Daily Mercado Livre sync (EventBridge 6-field cron, local time)."
  type        = string
  default     = "cron(0 2 * * ? *)"
}

variable "rebuild_cron" {
  description = "Daily metrics rebuild, after the sync (local time)."
  type        = string
  default     = "cron(0 3 * * ? *)"
}

variable "enabled" {
  description = "Whether the schedules fire (the 'power' switch; SuperSeller's own scheduler can do the same work)."
  type        = bool
  default     = true
}

variable "alarm_actions" {
  description = "ARNs notified when invocations fail or land in the DLQ (e.g. an SNS topic)."
  type        = list(string)
  default     = []
}

variable "enable_scheduler" {
  description = "The seed's switch: true creates the EventBridge schedules, false removes them (the bus, rules and API destinations stay, unused)."
  type        = bool
  default     = true
}

variable "scheduler_tenant_id" {
  description = "The tenant the schedules sync and rebuild (the seed's scheduler_tenant_id); \"all\" fans out to every active tenant."
  type        = string
  default     = "all"
  validation {
    condition     = length(var.scheduler_tenant_id) > 0 && length(var.scheduler_tenant_id) <= 64
    error_message = "scheduler_tenant_id must be 1 to 64 characters (a tenant id, or \"all\")."
  }
}
