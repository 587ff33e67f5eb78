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

# The online feature store, in the contract's optional feature_store shape (the same as the
# local root's): address, port, url, tls; null without one. No credentials: the AUTH string
# is in Secret Manager (feature_store_auth_secret), readable by the hosts' account only.
output "feature_store" {
  description = "The online feature store (Memorystore for Redis, TLS): address, port, url (rediss://<address>:<port>/0), tls; null without one."
  value       = var.feature_store_enabled ? module.feature_store[0].contract : null
}

output "feature_store_auth_secret" {
  description = "Secret Manager secret with the feature store's AUTH string (gcloud secrets versions access latest --secret=<this>); null without a feature store."
  value       = var.feature_store_enabled ? module.feature_store[0].auth_secret_id : null
}

output "feature_store_server_ca_certs" {
  description = "PEM CA certificates that verify the feature store's TLS endpoint (public); null without a feature store."
  value       = var.feature_store_enabled ? module.feature_store[0].server_ca_certs : null
}

output "model_store" {
  description = "The versioned model store: url (gs://<bucket>, the layout of service/demand_predictor/modelstore.py); null without one."
  value       = var.model_store_enabled ? { url = module.model_store[0].model_store_url } : null
}
