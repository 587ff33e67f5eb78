# The Terraform state bucket of the GCP environments: versioned (every state write kept,
# the last N previous versions retained), uniform bucket-level access (IAM only, no ACLs),
# public access prevention enforced. Created once; protected from `terraform destroy`.
locals {
  bucket_name = var.bucket_name != "" ? var.bucket_name : "${var.project_id}-dml-tfstate"
}

resource "google_storage_bucket" "state" {
  project                     = var.project_id
  name                        = local.bucket_name
  location                    = var.location
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  labels = merge(var.labels, {
    environment = "shared"
    managed-by  = "terraform"
    app         = "disposable-ml"
    purpose     = "terraform-state"
  })

  versioning {
    enabled = true
  }

  # Keep the newest N noncurrent versions of every state object, delete older ones.
  lifecycle_rule {
    condition {
      num_newer_versions = var.noncurrent_versions_to_keep
      with_state         = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  dynamic "logging" {
    for_each = var.access_log_bucket == "" ? [] : [var.access_log_bucket]
    content {
      log_bucket = logging.value
    }
  }

  lifecycle {
    prevent_destroy = true
  }
}
