# A custom-mode VPC with one subnet per region. Hosts get no public address: Private Google
# Access reaches Google APIs, Cloud NAT reaches everything else (apt, PyPI), and SSH comes
# in through IAP (see the firewall module).
resource "google_compute_network" "this" {
  # checkov:skip=CKV2_GCP_18: the ingress rules for this VPC are in the firewall module (terraform/modules/firewall), which every root attaches to it; the graph check does not follow a network across module calls
  project                 = var.project_id
  name                    = var.name
  description             = "disposable-ml VPC (managed by Terraform)"
  auto_create_subnetworks = false
  routing_mode            = "REGIONAL"
}

resource "google_compute_subnetwork" "this" {
  for_each = var.subnets

  project                    = var.project_id
  name                       = "${var.name}-${each.key}"
  region                     = each.key
  network                    = google_compute_network.this.id
  ip_cidr_range              = each.value
  private_ip_google_access   = true
  private_ipv6_google_access = "ENABLE_OUTBOUND_VM_ACCESS_TO_GOOGLE"

  dynamic "log_config" {
    for_each = var.flow_logs ? [1] : []
    content {
      aggregation_interval = "INTERVAL_10_MIN"
      flow_sampling        = 0.5
      metadata             = "INCLUDE_ALL_METADATA"
    }
  }
}

resource "google_compute_router" "this" {
  for_each = var.subnets

  project = var.project_id
  name    = "${var.name}-${each.key}"
  region  = each.key
  network = google_compute_network.this.id
}

resource "google_compute_router_nat" "this" {
  for_each = var.subnets

  project                            = var.project_id
  name                               = "${var.name}-${each.key}"
  region                             = each.key
  router                             = google_compute_router.this[each.key].name
  nat_ip_allocate_option             = "AUTO_ONLY"
  source_subnetwork_ip_ranges_to_nat = "LIST_OF_SUBNETWORKS"

  subnetwork {
    name                    = google_compute_subnetwork.this[each.key].id
    source_ip_ranges_to_nat = ["ALL_IP_RANGES"]
  }

  log_config {
    enable = true
    filter = var.nat_log_filter
  }
}
