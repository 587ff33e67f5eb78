output "api_rule_name" {
  description = "Name of the firewall rule that opens the API port."
  value       = google_compute_firewall.api.name
}

output "ssh_rule_name" {
  description = "Name of the firewall rule that opens SSH."
  value       = google_compute_firewall.ssh.name
}

output "api_source_ranges" {
  description = "Every range that can reach the API port (configured + Google health checks)."
  value       = google_compute_firewall.api.source_ranges
}

output "ssh_source_ranges" {
  description = "Every range that can reach SSH."
  value       = google_compute_firewall.ssh.source_ranges
}
