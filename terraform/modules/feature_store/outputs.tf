output "host" {
  description = "Private IP address of the Redis endpoint."
  value       = google_redis_instance.this.host
}

output "port" {
  description = "Port of the Redis endpoint (6378: Memorystore's TLS port)."
  value       = google_redis_instance.this.port
}

output "url" {
  description = "Connection URL without credentials: rediss://<host>:<port>/0."
  value       = "rediss://${google_redis_instance.this.host}:${google_redis_instance.this.port}/0"
}

output "contract" {
  description = "The output contract's feature_store object (docs/output-contract.md): address, port, url, tls. No credentials."
  value = {
    address = google_redis_instance.this.host
    port    = google_redis_instance.this.port
    url     = "rediss://${google_redis_instance.this.host}:${google_redis_instance.this.port}/0"
    tls     = true
  }
}

output "auth_string" {
  description = "The AUTH string (sensitive). Clients read it from Secret Manager (auth_secret_id), not from here."
  value       = google_redis_instance.this.auth_string
  sensitive   = true
}

output "auth_secret_id" {
  description = "Secret Manager secret holding the AUTH string (projects/<project>/secrets/<name>-auth): gcloud secrets versions access latest --secret=<this>."
  value       = google_secret_manager_secret.auth.id
}

output "auth_secret_version" {
  description = "The secret version holding the current AUTH string."
  value       = google_secret_manager_secret_version.auth.name
}

output "server_ca_certs" {
  description = "PEM certificates of the CA that signed the server's TLS certificate: clients verify the endpoint with them (public, not secret)."
  value       = [for c in google_redis_instance.this.server_ca_certs : c.cert]
}

output "instance_id" {
  description = "ID of the Memorystore instance (projects/<p>/locations/<region>/instances/<name>)."
  value       = google_redis_instance.this.id
}

output "current_location_id" {
  description = "Zone the endpoint is in now (STANDARD_HA: changes on failover)."
  value       = google_redis_instance.this.current_location_id
}

output "psa_range_name" {
  description = "Name of the private service access range (another producer in this VPC must share it: one servicenetworking connection per VPC)."
  value       = google_compute_global_address.psa.name
}
