output "address" {
  description = "The front door's anycast IPv4 address."
  value       = google_compute_global_address.this.address
}

output "url" {
  description = "Base URL of the service behind the front door (https://<first domain> with domains, else http://<address>)."
  value       = length(var.domains) > 0 ? "https://${var.domains[0]}" : "http://${google_compute_global_address.this.address}"
}

output "backend_service" {
  description = "Name of the backend service (gcloud compute backend-services get-health <name> --global)."
  value       = google_compute_backend_service.this.name
}

output "health_check" {
  description = "ID of the readiness health check the load balancer uses."
  value       = google_compute_health_check.ready.id
}
