# One region of the GPU fleet: an instance template (T4, baked image pinned by name), a
# regional managed instance group spread over the region's zones, its autoscaler and its
# auto-healing. The front door (terraform/modules/front_door) balances across regions.
locals {
  # A GCE instance with a GPU cannot live-migrate: host maintenance must stop it (it
  # restarts automatically). Forced here, never a variable (as in gpu_vm).
  on_host_maintenance = "TERMINATE"

  labels = merge(var.labels, {
    environment = var.environment
    managed-by  = "terraform"
    app         = "disposable-ml"
    region      = var.region
  })

}

resource "google_compute_instance_template" "this" {
  # checkov:skip=CKV_GCP_38: disks use Google-managed encryption; customer-supplied keys would have to be passed on every start, which breaks the unattended automatic restart after host maintenance (and every autoscaler or auto-healing create) that GPU instances rely on
  project     = var.project_id
  name_prefix = "${var.name_prefix}-${var.region}-"
  description = "disposable-ml ${var.environment} GPU host, image ${var.source_image} (managed by Terraform)"

  machine_type   = var.machine_type
  tags           = var.network_tags
  labels         = local.labels
  can_ip_forward = false

  # Per-environment values reach the baked image as instance metadata, read on the host from
  # http://metadata.google.internal/computeMetadata/v1/instance/attributes/<key>: the
  # environment, the port, and `service_config` as one JSON document (dml-config). The
  # security keys are literals: no value from a caller can switch them off.
  metadata = {
    dml-environment        = var.environment
    dml-service-port       = tostring(var.service_port)
    dml-config             = jsonencode(var.service_config)
    enable-oslogin         = "TRUE"
    block-project-ssh-keys = "TRUE"
    serial-port-enable     = "FALSE"
    # The guest agent publishes the host keys here (read through the API, never on first use).
    enable-guest-attributes = "TRUE"
  }

  disk {
    boot         = true
    auto_delete  = true
    source_image = var.source_image
    disk_size_gb = var.boot_disk_size_gb
    disk_type    = var.boot_disk_type
    # A template never changes in place (a change makes a new template and a rolling
    # update), so every label may go on the disk here.
    labels = local.labels
  }

  guest_accelerator {
    type  = var.gpu_type
    count = var.gpu_count
  }

  scheduling {
    on_host_maintenance = local.on_host_maintenance
    automatic_restart   = true
    preemptible         = false
    provisioning_model  = "STANDARD"
  }

  # Shielded VM as in gpu_vm: vTPM + integrity monitoring on, Secure Boot off by default
  # (the DKMS-built NVIDIA module in the baked image is unsigned; gpu_vm/README.md).
  shielded_instance_config {
    enable_secure_boot          = var.enable_secure_boot
    enable_vtpm                 = true
    enable_integrity_monitoring = true
  }

  # No access_config: no public address. The front door reaches the hosts over the VPC,
  # egress goes through Cloud NAT, SSH through IAP.
  network_interface {
    subnetwork = var.subnetwork
  }

  service_account {
    email  = var.service_account_email
    scopes = var.service_account_scopes
  }

  lifecycle {
    create_before_destroy = true

    precondition {
      condition     = !strcontains(var.source_image, "/family/")
      error_message = "source_image must name one image (projects/<p>/global/images/<name>), not a family: the fleet root resolves the family with a google_compute_image data source, so a bake changes the template on purpose."
    }
  }
}

# Auto-healing: is the process alive? /livez, patient (a GPU host that is slow to answer
# once must not be re-created), and only after the initial delay (>= 1.5x boot-to-ready).
resource "google_compute_health_check" "liveness" {
  project             = var.project_id
  name                = "${var.name_prefix}-${var.region}-livez"
  description         = "Auto-healing of the ${var.region} GPU fleet: GET /livez"
  check_interval_sec  = var.liveness_check_interval_sec
  timeout_sec         = var.liveness_timeout_sec
  healthy_threshold   = 2
  unhealthy_threshold = var.liveness_unhealthy_threshold

  http_health_check {
    port         = var.service_port
    request_path = var.liveness_path
  }

  log_config {
    enable = true
  }
}

resource "google_compute_region_instance_group_manager" "this" {
  project            = var.project_id
  name               = "${var.name_prefix}-${var.region}"
  description        = "disposable-ml ${var.environment} GPU fleet in ${var.region}"
  region             = var.region
  base_instance_name = "${var.name_prefix}-${var.region}"

  # Spread over the listed zones; BALANCED favours zones that have capacity (T4 stockouts
  # are per zone) while keeping the spread even where it can.
  distribution_policy_zones        = var.zones
  distribution_policy_target_shape = "BALANCED"

  version {
    name              = "serving"
    instance_template = google_compute_instance_template.this.self_link
  }

  named_port {
    name = var.service_port_name
    port = var.service_port
  }

  auto_healing_policies {
    health_check      = google_compute_health_check.liveness.id
    initial_delay_sec = var.autohealing_initial_delay_sec
  }

  # A new template (a bake, a new metadata value) replaces the hosts proactively: new ones
  # first (surge), none taken away before its replacement is ready (unavailable = 0).
  update_policy {
    type                  = "PROACTIVE"
    minimal_action        = "REPLACE"
    replacement_method    = "SUBSTITUTE"
    max_surge_fixed       = var.max_surge_fixed
    max_unavailable_fixed = 0
    min_ready_sec         = var.min_ready_sec
    # Required with distribution_policy_target_shape = BALANCED.
    instance_redistribution_type = "NONE"
  }

  # The size is the autoscaler's: no target_size here.
  wait_for_instances        = var.wait_for_instances
  wait_for_instances_status = "STABLE"

  timeouts {
    create = "45m"
    update = "45m"
  }
}

resource "google_compute_region_autoscaler" "this" {
  project = var.project_id
  name    = "${var.name_prefix}-${var.region}"
  region  = var.region
  target  = google_compute_region_instance_group_manager.this.id

  autoscaling_policy {
    min_replicas = var.min_replicas
    max_replicas = var.max_replicas
    # The measured boot-to-ready time: the autoscaler ignores a new host's load until then.
    cooldown_period = var.cooldown_period_sec
    mode            = "ON"

    # Scale on the front door's load: the share of max_rate_per_instance (requests per
    # second, a measured per-host rate) the hosts receive.
    load_balancing_utilization {
      target = var.lb_utilization_target
    }

    dynamic "scaling_schedules" {
      for_each = { for s in var.scaling_schedules : s.name => s }
      content {
        name                  = scaling_schedules.key
        description           = scaling_schedules.value.description
        schedule              = scaling_schedules.value.schedule
        time_zone             = scaling_schedules.value.time_zone
        duration_sec          = scaling_schedules.value.duration_sec
        min_required_replicas = scaling_schedules.value.min_required_replicas
      }
    }
  }
}

# The hosts the group runs, for the output contract. Their names are the group's, so they
# can only be listed once it exists: the first apply of a new fleet is two-step
# (docs/gcp.md: `terraform apply -target=module.front_door`, then `terraform apply`).
data "google_compute_region_instance_group" "this" {
  count = var.list_hosts ? 1 : 0

  project   = var.project_id
  self_link = google_compute_region_instance_group_manager.this.instance_group
}

data "google_compute_instance" "member" {
  for_each = var.list_hosts ? toset([for i in data.google_compute_region_instance_group.this[0].instances : i.instance]) : toset([])

  self_link = each.value
}
