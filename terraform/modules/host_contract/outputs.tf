output "contract_version" {
  description = "Version of the output contract the hosts follow."
  value       = local.contract_version
}

output "environment" {
  description = "Environment name."
  value       = var.environment
}

output "hosts" {
  description = "The validated hosts (name, address, ssh_user, ssh_port, groups, gpu_type, gpu_count, zone, instance_id, connection)."
  value       = var.hosts
}
