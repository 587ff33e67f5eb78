# The output contract (docs/output-contract.md): every environment exposes exactly these.
output "contract_version" {
  description = "Version of the output contract."
  value       = module.contract.contract_version
}

output "environment" {
  description = "Environment name."
  value       = module.contract.environment
}

output "hosts" {
  description = "Hosts: name, address, ssh_user, ssh_port, groups, gpu_type, gpu_count, zone, instance_id, connection."
  value       = module.contract.hosts
}

# Beside the contract (ignored by its parser, so backward compatible): the project the
# hosts live in. The inventory passes it to `gcloud compute start-iap-tunnel --project`,
# the janitor sweeps it.
output "project_id" {
  description = "GCP project of the hosts (for IAP tunnels and the janitor)."
  value       = var.project_id
}
