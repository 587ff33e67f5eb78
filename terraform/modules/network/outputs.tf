output "network_id" {
  description = "ID of the VPC (projects/<p>/global/networks/<name>)."
  value       = google_compute_network.this.id
}

output "network_name" {
  description = "Name of the VPC."
  value       = google_compute_network.this.name
}

output "network_self_link" {
  description = "Self link of the VPC (what firewall rules attach to)."
  value       = google_compute_network.this.self_link
}

output "subnetworks" {
  description = "region => subnet self link, for the gpu_vm module's network interfaces."
  value       = { for region, subnet in google_compute_subnetwork.this : region => subnet.self_link }
}

output "subnet_cidrs" {
  description = "region => subnet CIDR."
  value       = { for region, subnet in google_compute_subnetwork.this : region => subnet.ip_cidr_range }
}
