output "name" {
  description = "Name of the bridge."
  value       = lxd_network.this.name
}

output "cidr" {
  description = "Subnet of the bridge."
  value       = var.cidr
}

output "gateway" {
  description = "Address of the bridge (the hosts' gateway)."
  value       = cidrhost(var.cidr, 1)
}
