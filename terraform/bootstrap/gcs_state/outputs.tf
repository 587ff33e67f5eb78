output "bucket" {
  description = "Name of the state bucket."
  value       = google_storage_bucket.state.name
}

output "backend_hcl" {
  description = "Contents for terraform/environments/gcp/backend.hcl."
  value       = "bucket = \"${google_storage_bucket.state.name}\"\nprefix = \"disposable-ml/gcp\"\n"
}

output "host_service_account_emails" {
  description = "environment => email of the account its GPU hosts run as (the environment root's host_service_account_email)."
  value       = { for env, identity in module.host_identity : env => identity.email }
}
