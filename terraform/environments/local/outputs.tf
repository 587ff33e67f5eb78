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

output "front_door" {
  description = "Where clients reach the service: the load balancer (address, port, url), or null without one."
  value = var.lb_count == 0 ? null : {
    address = module.lb[0].hosts[0].address
    port    = 80
    url     = "http://${module.lb[0].hosts[0].address}"
  }
}

output "feature_store" {
  description = "The online feature store (Redis on the features host): address, port, url, tls; null without one."
  value = var.features_count == 0 ? null : {
    address = module.features[0].hosts[0].address
    port    = 6379
    url     = "redis://${module.features[0].hosts[0].address}:6379/0"
    tls     = false
  }
}
