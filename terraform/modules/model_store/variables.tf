variable "project_id" {
  description = "GCP project of the bucket."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a GCP project ID: 6-30 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "environment" {
  description = "Environment name (the `environment` label)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,19}$", var.environment))
    error_message = "environment must be 1-20 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "name" {
  description = "Bucket name (globally unique), e.g. <project>-dml-gcp-models."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9_-]{1,61}[a-z0-9]$", var.name)) && !startswith(var.name, "goog") && !strcontains(var.name, "google")
    error_message = "name must be 3-63 lowercase letters, digits, dashes or underscores, start and end with a letter or digit, and neither start with goog nor contain google (GCS bucket naming rules)."
  }
}

variable "location" {
  description = "Bucket location: the hosts' region (e.g. us-central1: no inter-region egress on reads) or a multi-region (US, EU) for a fleet across regions."
  type        = string

  validation {
    condition     = can(regex("^([a-zA-Z]+-[a-zA-Z]+[0-9]+|US|EU|ASIA|us|eu|asia)$", var.location))
    error_message = "location must be a region (e.g. us-central1) or a multi-region (US, EU, ASIA)."
  }
}

variable "storage_class" {
  description = "Storage class of new objects: STANDARD (hosts read models at every deploy)."
  type        = string
  default     = "STANDARD"

  validation {
    condition     = contains(["STANDARD", "NEARLINE", "COLDLINE", "ARCHIVE"], var.storage_class)
    error_message = "storage_class must be STANDARD, NEARLINE, COLDLINE or ARCHIVE."
  }
}

variable "noncurrent_versions_to_keep" {
  description = "Noncurrent versions kept per object (an overwritten index.json, a deleted model file); older ones are deleted by the lifecycle rule."
  type        = number
  default     = 10

  validation {
    condition     = var.noncurrent_versions_to_keep >= 1 && var.noncurrent_versions_to_keep <= 1000 && floor(var.noncurrent_versions_to_keep) == var.noncurrent_versions_to_keep
    error_message = "noncurrent_versions_to_keep must be a whole number from 1 to 1000."
  }
}

variable "reader_members" {
  description = "Members granted roles/storage.objectViewer on the bucket (read and list models), e.g. the hosts' service account: [\"serviceAccount:dml-gcp-vm@PROJECT.iam.gserviceaccount.com\"]."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.reader_members : can(regex("^(serviceAccount|user|group|principal|principalSet):[^\\s]+$", m))])
    error_message = "Every reader_members entry must be an IAM member such as serviceAccount:NAME@PROJECT.iam.gserviceaccount.com (never allUsers or allAuthenticatedUsers: the bucket is private)."
  }
}

variable "writer_members" {
  description = "Members granted writer_role on the bucket: whoever publishes models (CI, a person), e.g. [\"serviceAccount:dml-publisher@PROJECT.iam.gserviceaccount.com\"]."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.writer_members : can(regex("^(serviceAccount|user|group|principal|principalSet):[^\\s]+$", m))])
    error_message = "Every writer_members entry must be an IAM member such as serviceAccount:NAME@PROJECT.iam.gserviceaccount.com (never allUsers or allAuthenticatedUsers)."
  }

  validation {
    condition     = length(setintersection(var.writer_members, var.reader_members)) == 0
    error_message = "A member is either a reader or a writer: writer_role already lets it read."
  }
}

variable "writer_role" {
  description = "Role of writer_members: roles/storage.objectUser (default: publishing rewrites index.json, and replacing an object needs storage.objects.delete; with versioning the old index stays as a noncurrent version) or roles/storage.objectCreator (create only: enough for new version directories, not for updating the indexes)."
  type        = string
  default     = "roles/storage.objectUser"

  validation {
    condition     = contains(["roles/storage.objectUser", "roles/storage.objectCreator"], var.writer_role)
    error_message = "writer_role must be roles/storage.objectUser or roles/storage.objectCreator (never an admin role: it could change the bucket's IAM)."
  }
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete the bucket WITH every model and noncurrent version in it. false (default): a non-empty bucket refuses to be deleted. To really delete: apply with true first, then destroy."
  type        = bool
  default     = false
}

variable "access_log_bucket" {
  description = "Bucket that receives this bucket's usage logs; empty: none (Cloud Audit Logs still record IAM and admin activity)."
  type        = string
  default     = ""
}

variable "labels" {
  description = "Extra labels for the bucket (environment, managed-by, app, component are always set)."
  type        = map(string)
  default     = {}
}
