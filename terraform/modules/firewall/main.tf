# Ingress to the inference hosts, selected by network tag. Everything else inbound is
# refused by the VPC's implied deny-ingress rule; egress goes out through Cloud NAT.
locals {
  # Google Cloud load balancers and health checks probe from these ranges.
  google_health_check_ranges = ["35.191.0.0/16", "130.211.0.0/22"]
}

resource "google_compute_firewall" "api" {
  project     = var.project_id
  name        = "${var.name_prefix}-allow-api"
  description = "Inference API (tcp/${var.api_port}) from the configured ranges and Google health checks."
  network     = var.network
  direction   = "INGRESS"
  priority    = 1000

  source_ranges = distinct(concat(var.api_source_ranges, local.google_health_check_ranges))
  target_tags   = var.target_tags

  allow {
    protocol = "tcp"
    ports    = [tostring(var.api_port)]
  }

  dynamic "log_config" {
    for_each = var.log_connections ? [1] : []
    content {
      metadata = "INCLUDE_ALL_METADATA"
    }
  }
}

resource "google_compute_firewall" "ssh" {
  project     = var.project_id
  name        = "${var.name_prefix}-allow-ssh"
  description = "SSH (tcp/22), by default only through Identity-Aware Proxy TCP forwarding."
  network     = var.network
  direction   = "INGRESS"
  priority    = 1000

  source_ranges = var.ssh_source_ranges
  target_tags   = var.target_tags

  allow {
    protocol = "tcp"
    ports    = ["22"]
  }

  dynamic "log_config" {
    for_each = var.log_connections ? [1] : []
    content {
      metadata = "INCLUDE_ALL_METADATA"
    }
  }
}
