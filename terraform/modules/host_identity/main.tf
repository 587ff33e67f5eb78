# The service account GPU hosts run as, and its project roles. Made once per project (by
# terraform/bootstrap/gcs_state), not by every environment apply: creating accounts and
# granting project roles needs broad IAM rights (iam.serviceAccountAdmin,
# resourcemanager.projectIamAdmin) that the nightly's identity should not hold.
resource "google_service_account" "this" {
  project      = var.project_id
  account_id   = var.account_id
  display_name = var.display_name
  description  = "Runs disposable-ml GPU hosts: writes logs and metrics, nothing else (managed by Terraform, bootstrap root)."
}

resource "google_project_iam_member" "roles" {
  for_each = toset(var.roles)

  project = var.project_id
  role    = each.value
  member  = "serviceAccount:${google_service_account.this.email}"
}

# Who may attach this account to instances (iam.serviceAccounts.actAs): the identities
# that run `terraform apply` for the environments (a person, the nightly's account).
# Granted on this account only, not project-wide.
resource "google_service_account_iam_member" "deployers" {
  for_each = toset(var.deployers)

  service_account_id = google_service_account.this.name
  role               = "roles/iam.serviceAccountUser"
  member             = each.value
}
