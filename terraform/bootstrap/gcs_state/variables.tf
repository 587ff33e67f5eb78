variable "project_id" {
  description = "GCP project that owns the state bucket."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a GCP project ID: 6-30 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "bucket_name" {
  description = "Globally unique name of the state bucket; empty: <project_id>-dml-tfstate."
  type        = string
  default     = ""

  validation {
    condition     = var.bucket_name == "" || can(regex("^[a-z0-9][a-z0-9_-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be 3-63 lowercase letters, digits, dashes or underscores, starting and ending with a letter or digit."
  }
}

variable "location" {
  description = "Bucket location: a region (us-central1) or multi-region (US, EU)."
  type        = string
  default     = "US"

  validation {
    condition     = can(regex("^([A-Z]+[0-9]*|[a-z]+-[a-z]+[0-9]+)$", var.location))
    error_message = "location must be a multi-region (US, EU, ASIA) or a region (us-central1)."
  }
}

variable "noncurrent_versions_to_keep" {
  description = "How many previous versions of each state file to keep (older ones are deleted)."
  type        = number
  default     = 10

  validation {
    condition     = var.noncurrent_versions_to_keep >= 1 && var.noncurrent_versions_to_keep <= 1000 && floor(var.noncurrent_versions_to_keep) == var.noncurrent_versions_to_keep
    error_message = "noncurrent_versions_to_keep must be a whole number from 1 to 1000."
  }
}

variable "access_log_bucket" {
  description = "Existing bucket that receives this bucket's usage logs; empty: none (Cloud Audit Logs still record access)."
  type        = string
  default     = ""
}

variable "labels" {
  description = "Extra labels for the bucket (environment and managed-by are always set)."
  type        = map(string)
  default     = {}
}

variable "host_environments" {
  description = "Environments whose GPU hosts get a service account dml-<environment>-vm@ (the gcp root's environment, the gcp_fleet root's environment)."
  type        = list(string)
  default     = ["gcp", "fleet"]

  validation {
    condition     = length(var.host_environments) > 0 && alltrue([for e in var.host_environments : can(regex("^[a-z][a-z0-9-]{1,21}$", e))])
    error_message = "host_environments needs at least one name of 2-22 lowercase letters, digits or dashes (dml-<name>-vm must fit 30 characters)."
  }
}

variable "deployers" {
  description = "Who applies the environments and so must attach the hosts' accounts to instances (roles/iam.serviceAccountUser on those accounts only), e.g. [\"serviceAccount:dml-nightly@PROJECT.iam.gserviceaccount.com\", \"user:alice@example.com\"]."
  type        = list(string)
  default     = []
}
