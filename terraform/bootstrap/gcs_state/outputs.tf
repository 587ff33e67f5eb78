output "bucket" {
  description = "Name of the state bucket."
  value       = google_storage_bucket.state.name
}

output "backend_hcl" {
  description = "Contents for terraform/environments/gcp/backend.hcl."
  value       = "bucket = \"${google_storage_bucket.state.name}\"\nprefix = \"disposable-ml/gcp\"\n"
}
