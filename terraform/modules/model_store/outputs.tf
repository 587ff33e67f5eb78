output "name" {
  description = "Bucket name."
  value       = google_storage_bucket.this.name
}

output "model_store_url" {
  description = "The store's URL, gs://<bucket> (gcloud storage ls gs://<bucket>/index.json)."
  value       = "gs://${google_storage_bucket.this.name}"
}

output "self_link" {
  description = "Self link of the bucket."
  value       = google_storage_bucket.this.self_link
}
