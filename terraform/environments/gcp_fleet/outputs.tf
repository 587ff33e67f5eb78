# The output contract (docs/output-contract.md): the hosts are the groups' instances.
output "contract_version" {
  description = "Version of the output contract."
  value       = module.contract.contract_version
}

output "environment" {
  description = "Environment name."
  value       = module.contract.environment
}

output "hosts" {
  description = "Hosts (the managed instance groups' instances at apply time): name, address, ssh_user, ssh_port, groups, gpu_type, gpu_count, zone, instance_id, connection."
  value       = module.contract.hosts
}

# Beside the contract (its parser ignores them): where the service is reached, and the
# project (IAP tunnels, janitor).
output "front_door" {
  description = "The load balancer in front of the fleet: address, url, backend_service."
  value = {
    address         = module.front_door.address
    url             = module.front_door.url
    backend_service = module.front_door.backend_service
  }
}

output "project_id" {
  description = "GCP project of the fleet."
  value       = var.project_id
}

output "instance_group_managers" {
  description = "region => name of the region's managed instance group (gcloud compute instance-groups managed ... --region REGION)."
  value       = { for region, fleet in module.region : region => fleet.instance_group_manager }
}
