# The model store on GCP: one bucket holding the store layout of
# service/demand_predictor/modelstore.py (index.json, <name>/index.json,
# <name>/<version>/{manifest.json,model.safetensors}). Versioned (an overwritten or deleted
# object stays as a noncurrent version, the newest noncurrent_versions_to_keep of each are
# kept), uniform bucket-level access (IAM only, no ACLs), public access prevention
# enforced. Readers (the hosts' service account) get objectViewer, writers (CI, the
# publisher) writer_role; nothing else is granted here. See README.md.
locals {
  labels = merge(var.labels, {
    environment = var.environment
    managed-by  = "terraform"
    app         = "disposable-ml"
    component   = "model-store"
  })
}

resource "google_storage_bucket" "this" {
  project                     = var.project_id
  name                        = var.name
  location                    = upper(var.location)
  storage_class               = var.storage_class
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  # false: a bucket that still holds objects (or noncurrent versions) refuses to be deleted,
  # so `terraform destroy` stops there instead of deleting published models (README.md).
  force_destroy = var.force_destroy

  labels = local.labels

  versioning {
    enabled = true
  }

  # Keep the newest N noncurrent versions of every object, delete older ones.
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
}

resource "google_storage_bucket_iam_member" "reader" {
  for_each = toset(var.reader_members)

  bucket = google_storage_bucket.this.name
  role   = "roles/storage.objectViewer"
  member = each.value
}

resource "google_storage_bucket_iam_member" "writer" {
  for_each = toset(var.writer_members)

  bucket = google_storage_bucket.this.name
  role   = var.writer_role
  member = each.value
}
