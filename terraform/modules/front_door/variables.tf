variable "project_id" {
  description = "GCP project of the load balancer."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a GCP project ID: 6-30 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "name" {
  description = "Name of the load balancer's resources (<name>, <name>-readyz, <name>-http, <name>-https, ...)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,45}[a-z0-9]$", var.name))
    error_message = "name must be 2-47 lowercase letters, digits or dashes, starting with a letter and not ending with a dash (suffixes up to 16 characters are added)."
  }
}

variable "backends" {
  description = "region => instance group self link (the gpu_fleet module's instance_group output), one backend each."
  type        = map(string)

  validation {
    condition     = length(var.backends) >= 1 && length(var.backends) <= 10
    error_message = "backends needs 1 to 10 regions."
  }
}

variable "port_name" {
  description = "Named port of the instance groups to send requests to."
  type        = string
  default     = "http"

  validation {
    condition     = can(regex("^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$", var.port_name))
    error_message = "port_name must be 1-63 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "max_rate_per_instance" {
  description = "Requests per second one host takes at most: from a MEASURED per-host rate (load one T4 host at rising rates: the highest rate that still meets the latency target), not a guess. The autoscalers scale at lb_utilization_target of it."
  type        = number

  validation {
    condition     = var.max_rate_per_instance > 0 && var.max_rate_per_instance <= 100000
    error_message = "max_rate_per_instance must be above 0 (and at most 100000): the measured per-host requests per second."
  }
}

variable "ready_path" {
  description = "Readiness path the load balancer probes."
  type        = string
  default     = "/readyz"

  validation {
    condition     = startswith(var.ready_path, "/")
    error_message = "ready_path must start with /."
  }
}

variable "ready_check_interval_sec" {
  description = "Seconds between readiness probes (aggressive: a failing host leaves rotation fast)."
  type        = number
  default     = 2

  validation {
    condition     = var.ready_check_interval_sec >= 1 && var.ready_check_interval_sec <= 10
    error_message = "ready_check_interval_sec must be from 1 to 10 (readiness is meant to react in seconds)."
  }
}

variable "ready_timeout_sec" {
  description = "Seconds a readiness probe may take (at most the interval)."
  type        = number
  default     = 2

  validation {
    condition     = var.ready_timeout_sec >= 1 && var.ready_timeout_sec <= var.ready_check_interval_sec
    error_message = "ready_timeout_sec must be at least 1 and at most ready_check_interval_sec."
  }
}

variable "ready_healthy_threshold" {
  description = "Successful probes in a row before a host takes traffic again."
  type        = number
  default     = 2

  validation {
    condition     = var.ready_healthy_threshold >= 1 && var.ready_healthy_threshold <= 10
    error_message = "ready_healthy_threshold must be from 1 to 10."
  }
}

variable "ready_unhealthy_threshold" {
  description = "Failed probes in a row before a host leaves rotation."
  type        = number
  default     = 2

  validation {
    condition     = var.ready_unhealthy_threshold >= 1 && var.ready_unhealthy_threshold <= 10
    error_message = "ready_unhealthy_threshold must be from 1 to 10."
  }
}

variable "request_timeout_sec" {
  description = "Seconds the load balancer waits for a host's response."
  type        = number
  default     = 30

  validation {
    condition     = var.request_timeout_sec >= 1 && var.request_timeout_sec <= 86400
    error_message = "request_timeout_sec must be from 1 to 86400."
  }
}

variable "connection_draining_timeout_sec" {
  description = "Seconds a host leaving the group (scale-in, rolling update) keeps finishing its requests."
  type        = number
  default     = 60

  validation {
    condition     = var.connection_draining_timeout_sec >= 0 && var.connection_draining_timeout_sec <= 3600
    error_message = "connection_draining_timeout_sec must be from 0 to 3600."
  }
}

variable "domains" {
  description = "Domains for a Google-managed certificate; with any, the front door serves HTTPS (TLS 1.2+) and HTTP only redirects. Empty: plain HTTP (tests only: the API has no authentication)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for d in var.domains : can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]{2,}$", d))])
    error_message = "Every domain must be a lowercase DNS name, e.g. predict.example.com."
  }
}

variable "security_policy" {
  description = "Cloud Armor security policy (self link) on the backend service, e.g. one that limits each client's request rate; null: none."
  type        = string
  default     = null
}

variable "log_sample_rate" {
  description = "Share of requests logged by the load balancer (0 to 1)."
  type        = number
  default     = 1

  validation {
    condition     = var.log_sample_rate >= 0 && var.log_sample_rate <= 1
    error_message = "log_sample_rate must be from 0 to 1."
  }
}
