variable "project_id" {
  description = "GCP project that owns the service account."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a GCP project ID: 6-30 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "account_id" {
  description = "The account's ID, the part before @ (e.g. dml-gcp-vm)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.account_id))
    error_message = "account_id must be 6-30 lowercase letters, digits or dashes, starting with a letter and not ending with a dash."
  }
}

variable "display_name" {
  description = "Display name of the account."
  type        = string
  default     = "disposable-ml GPU hosts"

  validation {
    condition     = length(var.display_name) > 0 && length(var.display_name) <= 100
    error_message = "display_name must be 1-100 characters."
  }
}

variable "roles" {
  description = "Project roles of the account (least privilege: write logs and metrics)."
  type        = list(string)
  default     = ["roles/logging.logWriter", "roles/monitoring.metricWriter"]

  validation {
    condition     = alltrue([for r in var.roles : startswith(r, "roles/") && !contains(["roles/owner", "roles/editor"], r) && !endswith(r, ".admin")])
    error_message = "roles must be roles/... and must not be owner, editor or an *.admin role."
  }
}

variable "deployers" {
  description = "IAM members allowed to attach the account to instances (roles/iam.serviceAccountUser on this account only), e.g. [\"serviceAccount:dml-nightly@PROJECT.iam.gserviceaccount.com\", \"user:alice@example.com\"]."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.deployers : can(regex("^(user|serviceAccount|group):[^@\\s]+@[^@\\s]+$", m))])
    error_message = "Every deployer must be user:EMAIL, serviceAccount:EMAIL or group:EMAIL."
  }
}
