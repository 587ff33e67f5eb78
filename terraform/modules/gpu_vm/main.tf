# N GPU hosts spread over zones (`placements`), Debian 12, running as a service account
# made once per project (terraform/bootstrap/gcs_state, module host_identity), OS Login,
# Shielded VM (vTPM + integrity monitoring; Secure Boot off by default: see README), no
# public IP unless asked for.
locals {
  # Host key = instance name = inventory name: <prefix>-<zone>-<n>, in placement order.
  # n is 1..count, or the placement's explicit `numbers` (the zone fallback keeps the
  # hosts that already run, e.g. only host 2 of a zone whose host 1 hit a stockout).
  placement_numbers = [for p in var.placements : p.numbers == null ? range(1, p.count + 1) : p.numbers]
  host_list = flatten([
    for i, p in var.placements : [
      for n in local.placement_numbers[i] : {
        name   = "${var.name_prefix}-${p.zone}-${n}"
        zone   = p.zone
        region = regex("^(.+)-[a-z]$", p.zone)[0]
      }
    ]
  ])
  hosts = { for h in local.host_list : h.name => h }

  image = var.image_name != "" ? "projects/${var.image_project}/global/images/${var.image_name}" : "projects/${var.image_project}/global/images/family/${var.image_family}"

  # A GCE instance with a GPU cannot live-migrate: host maintenance must stop it
  # (it restarts automatically). Forced here, never a variable.
  on_host_maintenance = var.gpu_count > 0 ? "TERMINATE" : "MIGRATE"

  # Labels that identify a host for its whole life (the janitor selects by them). Only
  # these go on the boot disk: on google provider 6.x a change of
  # boot_disk.initialize_params.labels replaces the instance (README, "Labels").
  identity_labels = {
    environment = var.environment
    managed-by  = "terraform"
    app         = "disposable-ml"
  }
  # Everything, including the caller's `labels`, goes on the instance (updated in place).
  labels = merge(var.labels, local.identity_labels)

  # Without OS Login the key goes into instance metadata (never project-wide: blocked).
  ssh_keys = var.enable_oslogin || var.ssh_public_key == "" ? "" : "${var.ssh_user}:${trimspace(var.ssh_public_key)}"
}

# The "created" label: stamped once per host and kept in state, so it never causes a diff.
# It is re-stamped when the host is re-created for a new zone or image.
resource "time_static" "created" {
  for_each = local.hosts

  triggers = {
    zone  = each.value.zone
    image = local.image
  }
}

resource "google_compute_instance" "host" {
  # checkov:skip=CKV_GCP_40: access_config is a dynamic block rendered only when assign_public_ip = true (default false); checkov renders dynamic blocks unconditionally
  # checkov:skip=CKV_GCP_38: disks use Google-managed encryption; customer-supplied keys would have to be passed on every start, which breaks the unattended automatic restart after host maintenance that GPU instances rely on
  for_each = local.hosts

  project      = var.project_id
  name         = each.key
  zone         = each.value.zone
  machine_type = var.machine_type
  tags         = var.network_tags
  labels       = merge(local.labels, { created = formatdate("YYYYMMDD-hhmmss", time_static.created[each.key].rfc3339) })

  metadata = {
    enable-oslogin         = var.enable_oslogin ? "TRUE" : "FALSE"
    block-project-ssh-keys = "TRUE"
    serial-port-enable     = "FALSE"
    ssh-keys               = local.ssh_keys
    # The guest agent publishes the host keys here; the controller reads them through the
    # API (disposable/hosts/hostkeys.py), never trusting a key on first contact.
    enable-guest-attributes = "TRUE"
  }

  can_ip_forward            = false
  deletion_protection       = false
  allow_stopping_for_update = true

  boot_disk {
    auto_delete = true

    initialize_params {
      image = local.image
      size  = var.boot_disk_size_gb
      type  = var.boot_disk_type
      # Identity labels only, never var.labels: see locals.
      labels = merge(local.identity_labels, { created = formatdate("YYYYMMDD-hhmmss", time_static.created[each.key].rfc3339) })
    }
  }

  dynamic "guest_accelerator" {
    for_each = var.gpu_count > 0 ? [1] : []
    content {
      type  = var.gpu_type
      count = var.gpu_count
    }
  }

  scheduling {
    on_host_maintenance = local.on_host_maintenance
    automatic_restart   = true
    preemptible         = false
    provisioning_model  = "STANDARD"
  }

  shielded_instance_config {
    enable_secure_boot          = var.enable_secure_boot
    enable_vtpm                 = true
    enable_integrity_monitoring = true
  }

  network_interface {
    subnetwork = lookup(var.subnetworks, each.value.region, null)

    dynamic "access_config" {
      for_each = var.assign_public_ip ? [1] : []
      content {
        network_tier = "PREMIUM"
      }
    }
  }

  service_account {
    email  = var.service_account_email
    scopes = var.service_account_scopes
  }

  lifecycle {
    precondition {
      condition     = contains(keys(var.subnetworks), each.value.region)
      error_message = "Zone ${each.value.zone} is in region ${each.value.region}, which has no subnet: add it to the network's subnets."
    }

    precondition {
      condition     = var.gpu_count == 0 || var.gpu_type != "nvidia-tesla-t4" || startswith(var.machine_type, "n1-")
      error_message = "NVIDIA T4 GPUs attach only to N1 machine types (e.g. n1-standard-4), not ${var.machine_type}."
    }
  }
}
