# The online feature store on GCP: Memorystore for Redis in the environment's VPC, reached
# through private service access (no public endpoint, no VPC firewall rule needed), AUTH on,
# TLS on (server authentication), RDB snapshots, a fixed maintenance window. The AUTH string
# goes to Secret Manager, readable by the members in auth_secret_accessors only (the hosts'
# service account); it is never part of the output contract. See README.md.
locals {
  labels = merge(var.labels, {
    environment = var.environment
    managed-by  = "terraform"
    app         = "disposable-ml"
    component   = "feature-store"
  })

  psa_address       = split("/", var.psa_cidr)[0]
  psa_prefix_length = tonumber(split("/", var.psa_cidr)[1])
}

# Private service access: a range of the VPC handed to Google's service producers, and the
# peering (servicenetworking) that carries it. A VPC has ONE such connection per service:
# another producer (Cloud SQL, ...) in this VPC must share this range (output psa_range_name).
resource "google_compute_global_address" "psa" {
  project       = var.project_id
  name          = "${var.name}-psa"
  description   = "Private service access range of the ${var.name} feature store (managed by Terraform)."
  purpose       = "VPC_PEERING"
  address_type  = "INTERNAL"
  address       = local.psa_address
  prefix_length = local.psa_prefix_length
  network       = var.network
}

resource "google_service_networking_connection" "psa" {
  network                 = var.network
  service                 = "servicenetworking.googleapis.com"
  reserved_peering_ranges = [google_compute_global_address.psa.name]
}

resource "google_redis_instance" "this" {
  project        = var.project_id
  region         = var.region
  name           = var.name
  display_name   = "disposable-ml ${var.environment} feature store"
  tier           = var.tier
  memory_size_gb = var.memory_size_gb
  redis_version  = var.redis_version
  redis_configs  = var.redis_configs

  location_id             = var.zone == "" ? null : var.zone
  alternative_location_id = var.alternative_zone == "" ? null : var.alternative_zone

  authorized_network = var.network
  connect_mode       = "PRIVATE_SERVICE_ACCESS"
  reserved_ip_range  = google_compute_global_address.psa.name

  # Both literals, never variables: a client without the AUTH string, or without TLS, is
  # refused. With TLS the endpoint listens on 6378 (the `port` output says so).
  auth_enabled            = true
  transit_encryption_mode = "SERVER_AUTHENTICATION"

  # RDB snapshots (Memorystore offers no AOF): after a failure or a Basic-tier restart the
  # data is what the last snapshot held, i.e. up to one rdb_snapshot_period of writes lost.
  persistence_config {
    persistence_mode    = var.persistence_mode
    rdb_snapshot_period = var.persistence_mode == "RDB" ? var.rdb_snapshot_period : null
  }

  maintenance_policy {
    description = "disposable-ml feature store: weekly window, UTC."
    weekly_maintenance_window {
      day = var.maintenance_window.day
      start_time {
        hours   = var.maintenance_window.hour
        minutes = 0
        seconds = 0
        nanos   = 0
      }
    }
  }

  labels = local.labels

  depends_on = [google_service_networking_connection.psa]
}

# The AUTH string, for the hosts: one secret, one version, read access for the accessors
# only (the hosts' service account). Replicated in the instance's region only.
resource "google_secret_manager_secret" "auth" {
  project   = var.project_id
  secret_id = "${var.name}-auth"
  labels    = local.labels

  replication {
    user_managed {
      replicas {
        location = var.region
      }
    }
  }
}

resource "google_secret_manager_secret_version" "auth" {
  secret      = google_secret_manager_secret.auth.id
  secret_data = google_redis_instance.this.auth_string
}

resource "google_secret_manager_secret_iam_member" "auth_accessor" {
  for_each = toset(var.auth_secret_accessors)

  project   = var.project_id
  secret_id = google_secret_manager_secret.auth.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = each.value
}
