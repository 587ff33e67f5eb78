locals {
  prefix     = "dml-${var.environment}${var.name_suffix}"
  prefix_len = split("/", var.network_cidr)[1]
  hosts = {
    for i in range(var.host_count) : format("%s-%d", local.prefix, i + 1) => {
      address = cidrhost(var.network_cidr, var.first_host_number + i)
    }
  }
}

resource "lxd_profile" "host" {
  name        = local.prefix
  description = "disposable-ml ${var.environment} hosts: CPU/memory limits, root disk, NIC"

  config = {
    "limits.cpu"    = tostring(var.cpu_limit)
    "limits.memory" = var.memory_limit
    # Found by label when a killed run leaves it behind (disposable/local/lxd.py).
    "user.disposable-ml.environment" = var.environment
  }

  device {
    name = "root"
    type = "disk"
    properties = {
      path = "/"
      pool = var.storage_pool
    }
  }
}

resource "lxd_container" "host" {
  for_each = local.hosts

  name     = each.key
  image    = var.image
  profiles = [lxd_profile.host.name]
  # Wait until the container has its address: the provider reads the MAC address (the
  # contract's instance_id) only then. Without the wait, a read 1 s after the start
  # (refresh_interval, versions.tf) found no address under load, and the output failed
  # ("c.mac_address is null"). With the provider's default 10 s refresh_interval this wait
  # added ~20 s to every launch; with 1 s it polls 1 s after the start, then every 3 s.
  wait_for_network = true

  config = {
    "user.disposable-ml.environment" = var.environment
    "user.disposable-ml.managed-by"  = "terraform"
  }

  device {
    name = "eth0"
    type = "nic"
    properties = {
      network        = var.network_name
      "ipv4.address" = each.value.address
    }
  }

  # The package store (the apt lock's signed repositories), read-only: hosts install from
  # it and can change nothing in it.
  dynamic "device" {
    for_each = var.apt_store_dir == "" ? [] : [var.apt_store_dir]
    content {
      name = "package-store"
      type = "disk"
      properties = {
        source   = device.value
        path     = "/var/lib/dml-store"
        readonly = "true"
      }
    }
  }

  # The versioned model store, read-only: hosts pull the version they serve from it.
  dynamic "device" {
    for_each = var.model_store_dir == "" ? [] : [var.model_store_dir]
    content {
      name = "model-store"
      type = "disk"
      properties = {
        source   = device.value
        path     = "/var/lib/dml-models"
        readonly = "true"
      }
    }
  }

  # State that outlives the host (the feature store's data): read-write, kept by the controller.
  dynamic "device" {
    for_each = var.data_volume == "" ? [] : [var.data_volume]
    content {
      name = "state"
      type = "disk"
      properties = {
        pool   = var.storage_pool
        source = device.value
        path   = var.data_volume_path
      }
    }
  }

  lifecycle {
    precondition {
      condition     = var.data_volume == "" || var.host_count == 1
      error_message = "data_volume attaches to one host; set host_count = 1 for hosts that keep state."
    }
  }

  file {
    content            = "${trimspace(var.ssh_public_key)}\n"
    target_file        = "/home/${var.ssh_user}/.ssh/authorized_keys"
    uid                = var.ssh_user_uid
    gid                = var.ssh_user_uid
    mode               = "0600"
    create_directories = true
  }
}
