variable "project_id" {
  description = "GCP project the fleet runs in."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a GCP project ID: 6-30 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "environment" {
  description = "Environment name: the `environment` label and the dml-environment metadata value."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,19}$", var.environment))
    error_message = "environment must be 1-20 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "region" {
  description = "Region of this part of the fleet (e.g. us-central1)."
  type        = string

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a GCP region, e.g. us-central1."
  }
}

variable "zones" {
  description = "Zones of `region` the group spreads its hosts over (distribution_policy_zones): only zones that offer the GPU type."
  type        = list(string)

  validation {
    condition     = length(var.zones) >= 1 && length(var.zones) <= 4 && length(distinct(var.zones)) == length(var.zones)
    error_message = "zones needs 1 to 4 distinct zones."
  }

  validation {
    condition     = alltrue([for z in var.zones : can(regex("^[a-z]+-[a-z]+[0-9]+-[a-z]$", z)) && startswith(z, "${var.region}-")])
    error_message = "Every zone must be a zone of the region, e.g. us-central1-a for us-central1."
  }
}

variable "name_prefix" {
  description = "Prefix of every name: group and autoscaler <prefix>-<region>, hosts <prefix>-<region>-<4 chars>, template <prefix>-<region>-<suffix>."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,18}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 2-20 lowercase letters, digits or dashes, starting with a letter and not ending with a dash."
  }

  # GCE: an instance template's name_prefix is at most 37 characters (a 26-character
  # suffix is added), instance names at most 63 (<base>-<4 chars>).
  validation {
    condition     = length("${var.name_prefix}-${var.region}-") <= 37
    error_message = "<name_prefix>-<region>- is longer than the 37 characters GCE allows an instance template's name prefix: shorten name_prefix."
  }
}

variable "subnetwork" {
  description = "Self link of the region's subnet (the network module's subnetworks[region])."
  type        = string

  validation {
    condition     = length(trimspace(var.subnetwork)) > 0
    error_message = "subnetwork must not be empty."
  }
}

variable "network_tags" {
  description = "Network tags of every host; the firewall module targets these (health checks, IAP)."
  type        = list(string)

  validation {
    condition     = length(var.network_tags) > 0 && alltrue([for t in var.network_tags : can(regex("^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$", t))])
    error_message = "network_tags needs at least one tag; tags are 1-63 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "service_account_email" {
  description = "Service account the hosts run as, made once per project by terraform/bootstrap/gcs_state (never the default compute account)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z][a-z0-9-]{4,28}[a-z0-9]\\.iam\\.gserviceaccount\\.com$", var.service_account_email))
    error_message = "service_account_email must be a user-managed service account (<name>@<project>.iam.gserviceaccount.com); the default compute account is refused."
  }
}

variable "service_account_scopes" {
  description = "OAuth scopes of the hosts' service account (IAM roles still decide what it may do)."
  type        = list(string)
  default = [
    "https://www.googleapis.com/auth/logging.write",
    "https://www.googleapis.com/auth/monitoring.write",
  ]

  validation {
    condition     = !contains(var.service_account_scopes, "https://www.googleapis.com/auth/cloud-platform")
    error_message = "Do not grant the cloud-platform scope: name the APIs the hosts need."
  }
}

variable "machine_type" {
  description = "GCE machine type. NVIDIA T4 GPUs attach only to N1 machine types."
  type        = string
  default     = "n1-standard-4"

  validation {
    condition     = can(regex("^[a-z][a-z0-9]*-[a-z0-9-]+$", var.machine_type))
    error_message = "machine_type must be a GCE machine type name, e.g. n1-standard-4."
  }
}

variable "gpu_type" {
  description = "Accelerator type of every host."
  type        = string
  default     = "nvidia-tesla-t4"

  validation {
    condition     = can(regex("^nvidia-[a-z0-9-]+$", var.gpu_type))
    error_message = "gpu_type must be a GCE accelerator type, e.g. nvidia-tesla-t4."
  }
}

variable "gpu_count" {
  description = "GPUs per host: 1, 2 or 4 (a fleet host always has a GPU)."
  type        = number
  default     = 1

  validation {
    condition     = contains([1, 2, 4], var.gpu_count)
    error_message = "gpu_count must be 1, 2 or 4."
  }
}

variable "source_image" {
  description = "The one boot image, by name: projects/<project>/global/images/<name> (the fleet root resolves the bake's family to its newest name with a google_compute_image data source)."
  type        = string

  validation {
    condition     = can(regex("^projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/global/images/[a-z][a-z0-9-]{0,62}$", var.source_image))
    error_message = "source_image must be projects/<project>/global/images/<name>, one pinned image (not a family)."
  }
}

variable "boot_disk_size_gb" {
  description = "Boot disk size in GB (at least the baked image's size)."
  type        = number
  default     = 50

  validation {
    condition     = var.boot_disk_size_gb >= 20 && var.boot_disk_size_gb <= 2000 && floor(var.boot_disk_size_gb) == var.boot_disk_size_gb
    error_message = "boot_disk_size_gb must be a whole number from 20 to 2000."
  }
}

variable "boot_disk_type" {
  description = "Boot disk type."
  type        = string
  default     = "pd-balanced"

  validation {
    condition     = contains(["pd-standard", "pd-balanced", "pd-ssd"], var.boot_disk_type)
    error_message = "boot_disk_type must be pd-standard, pd-balanced or pd-ssd."
  }
}

variable "enable_secure_boot" {
  description = "Shielded VM Secure Boot. Default false, as in gpu_vm: the DKMS-built NVIDIA module is unsigned (terraform/modules/gpu_vm/README.md)."
  type        = bool
  default     = false
}

variable "service_config" {
  description = "Per-environment values for the service on the hosts, published as one JSON document in the instance metadata key dml-config (beside dml-environment and dml-service-port). A change makes a new template and a rolling update."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.service_config) : can(regex("^[a-zA-Z0-9_.-]{1,128}$", k))]) && length(jsonencode(var.service_config)) <= 256000
    error_message = "service_config keys are 1-128 letters, digits, '.', '-' or '_', and the JSON document must stay under GCE's 256 KB per metadata value."
  }
}

variable "labels" {
  description = "Extra labels for the template, its disks and the hosts (environment, managed-by, app and region are always set)."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k, v in var.labels : can(regex("^[a-z][a-z0-9_-]{0,62}$", k)) && can(regex("^[a-z0-9_-]{0,63}$", v))])
    error_message = "Label keys must start with a lowercase letter; keys and values are up to 63 lowercase letters, digits, _ or -."
  }
}

variable "service_port" {
  description = "TCP port the inference API listens on (inference_service_port); the named port the front door sends to."
  type        = number
  default     = 8080

  validation {
    condition     = var.service_port >= 1 && var.service_port <= 65535 && floor(var.service_port) == var.service_port && var.service_port != 22
    error_message = "service_port must be a whole number from 1 to 65535 other than 22."
  }
}

variable "service_port_name" {
  description = "Name of the group's named port (the front door's backend service port_name)."
  type        = string
  default     = "http"

  validation {
    condition     = can(regex("^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$", var.service_port_name))
    error_message = "service_port_name must be 1-63 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "liveness_path" {
  description = "Auto-healing probe path: is the process alive (not: is it ready)."
  type        = string
  default     = "/livez"

  validation {
    condition     = startswith(var.liveness_path, "/")
    error_message = "liveness_path must start with /."
  }
}

variable "liveness_check_interval_sec" {
  description = "Seconds between auto-healing probes."
  type        = number
  default     = 10

  validation {
    condition     = var.liveness_check_interval_sec >= 1 && var.liveness_check_interval_sec <= 300
    error_message = "liveness_check_interval_sec must be from 1 to 300."
  }
}

variable "liveness_timeout_sec" {
  description = "Seconds an auto-healing probe may take (at most the interval)."
  type        = number
  default     = 5

  validation {
    condition     = var.liveness_timeout_sec >= 1 && var.liveness_timeout_sec <= var.liveness_check_interval_sec
    error_message = "liveness_timeout_sec must be at least 1 and at most liveness_check_interval_sec."
  }
}

variable "liveness_unhealthy_threshold" {
  description = "Failed auto-healing probes in a row before a host is re-created."
  type        = number
  default     = 3

  validation {
    condition     = var.liveness_unhealthy_threshold >= 2 && var.liveness_unhealthy_threshold <= 10
    error_message = "liveness_unhealthy_threshold must be from 2 to 10 (one failed probe must never re-create a GPU host)."
  }
}

variable "boot_to_ready_seconds" {
  description = "MEASURED seconds from instance creation to GET /readyz = 200 on a host from the baked image (docs/gcp.md, Fleet: measure it). The auto-healing delay and the autoscaler's cooldown derive from it."
  type        = number

  validation {
    condition     = var.boot_to_ready_seconds >= 30 && var.boot_to_ready_seconds <= 3600
    error_message = "boot_to_ready_seconds must be from 30 to 3600 (a GPU host from a baked image takes minutes, not seconds)."
  }
}

variable "autohealing_initial_delay_sec" {
  description = "Seconds auto-healing waits before judging a new host: at least 1.5x boot_to_ready_seconds, or a slow boot gets the host re-created in a loop."
  type        = number

  validation {
    condition     = var.autohealing_initial_delay_sec >= 1.5 * var.boot_to_ready_seconds && var.autohealing_initial_delay_sec <= 3600
    error_message = "autohealing_initial_delay_sec must be at least 1.5x boot_to_ready_seconds (and at most 3600): auto-healing must not re-create hosts that are still booting."
  }
}

variable "min_replicas" {
  description = "Fewest hosts in the region, whatever the load: at least 2, so one host's failure or replacement never empties the region."
  type        = number

  validation {
    condition     = var.min_replicas >= 2 && floor(var.min_replicas) == var.min_replicas
    error_message = "min_replicas must be a whole number of at least 2 (one host is a single point of failure)."
  }
}

variable "max_replicas" {
  description = "Most hosts in the region (bounded by your NVIDIA_T4_GPUS quota there)."
  type        = number

  validation {
    condition     = var.max_replicas >= var.min_replicas && var.max_replicas <= 1000 && floor(var.max_replicas) == var.max_replicas
    error_message = "max_replicas must be a whole number from min_replicas to 1000."
  }
}

variable "cooldown_period_sec" {
  description = "Autoscaler cooldown (initialization period): the MEASURED boot-to-ready time; the autoscaler ignores a new host's load until then. Not less than boot_to_ready_seconds."
  type        = number

  validation {
    condition     = var.cooldown_period_sec >= var.boot_to_ready_seconds && var.cooldown_period_sec <= 3600
    error_message = "cooldown_period_sec must be at least boot_to_ready_seconds (and at most 3600): a booting host has no load yet, and counting it would scale in."
  }
}

variable "lb_utilization_target" {
  description = "Autoscaler target: the share of the front door's max_rate_per_instance each host should receive (0.8 = scale out at 80% of the measured per-host rate)."
  type        = number
  default     = 0.8

  validation {
    condition     = var.lb_utilization_target > 0 && var.lb_utilization_target <= 1
    error_message = "lb_utilization_target must be above 0 and at most 1."
  }
}

variable "scaling_schedules" {
  description = "Scheduled minimums for known peaks (rush hour): cron `schedule` in `time_zone`, `min_required_replicas` for `duration_sec`. Scale-out ahead of demand, since a GPU host needs boot_to_ready_seconds before it serves."
  type = list(object({
    name                  = string
    schedule              = string
    time_zone             = string
    duration_sec          = number
    min_required_replicas = number
    description           = optional(string, "")
  }))
  default = []

  validation {
    condition = alltrue([
      for s in var.scaling_schedules :
      can(regex("^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$", s.name)) && length(split(" ", trimspace(s.schedule))) == 5 &&
      s.duration_sec >= 300 && s.min_required_replicas >= 0 && s.min_required_replicas <= var.max_replicas
    ])
    error_message = "Every scaling schedule needs a name (lowercase, dashes), a 5-field cron schedule, duration_sec >= 300 and min_required_replicas from 0 to max_replicas."
  }

  validation {
    condition     = length(distinct([for s in var.scaling_schedules : s.name])) == length(var.scaling_schedules)
    error_message = "Scaling schedule names must be unique."
  }
}

variable "max_surge_fixed" {
  description = "Extra hosts a rolling update may create above the target size. GCE requires 0 or at least the number of zones for a regional group; 0 would mean taking hosts away first, so at least the number of zones."
  type        = number

  validation {
    condition     = var.max_surge_fixed >= length(var.zones) && floor(var.max_surge_fixed) == var.max_surge_fixed
    error_message = "max_surge_fixed must be a whole number of at least the number of zones (GCE: a regional group's fixed surge is 0 or >= its zone count; with max_unavailable 0 it cannot be 0)."
  }
}

variable "min_ready_sec" {
  description = "Seconds a new host must be healthy before a rolling update counts it as updated and moves on."
  type        = number
  default     = 60

  validation {
    condition     = var.min_ready_sec >= 0 && var.min_ready_sec <= 3600
    error_message = "min_ready_sec must be from 0 to 3600."
  }
}

variable "wait_for_instances" {
  description = "Make terraform apply wait until the group is stable (all hosts created and healthy)."
  type        = bool
  default     = true
}

variable "list_hosts" {
  description = "List the group's hosts (data sources) for the output contract. They can be listed only once the group exists: a new fleet's first apply targets the front door (which needs the groups, not the listing), or sets this false."
  type        = bool
  default     = true
}

variable "ssh_user" {
  description = "OS Login POSIX user that reaches the hosts over IAP (the contract's ssh_user)."
  type        = string

  validation {
    condition     = can(regex("^[a-z_][a-z0-9_.-]{0,31}$", var.ssh_user)) && var.ssh_user != "root"
    error_message = "ssh_user must be a POSIX user name (lowercase, up to 32 characters) other than root."
  }
}

variable "groups" {
  description = "Ansible groups of every host (the output contract's groups)."
  type        = list(string)
  default     = ["inference", "fleet"]

  validation {
    condition     = length(var.groups) > 0 && alltrue([for g in var.groups : can(regex("^[a-z][a-z0-9_]*$", g))])
    error_message = "groups needs at least one group; names are lowercase letters, digits and underscores."
  }
}
