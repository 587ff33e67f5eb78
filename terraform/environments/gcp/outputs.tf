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
