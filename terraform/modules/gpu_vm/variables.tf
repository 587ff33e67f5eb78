variable "project_id" {
  description = "GCP project the hosts run in."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a GCP project ID: 6-30 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "environment" {
  description = "Environment name, set as the `environment` label on every resource."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,19}$", var.environment))
    error_message = "environment must be 1-20 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "name_prefix" {
  description = "Prefix of host names (<prefix>-<zone>-<n>)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,18}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-20 lowercase letters, digits or dashes, starting with a letter and not ending with a dash."
  }
}

variable "placements" {
  description = "Where the hosts run: one entry per zone with its host count, e.g. [{ zone = \"us-central1-a\", count = 1 }]. Add entries (zones of other regions too) to scale out; every zone's region needs a subnet in `subnetworks`. Optional `numbers` names the hosts of a zone explicitly (host <prefix>-<zone>-<n> for each n; length must equal count): the zone fallback uses it to keep hosts that already run."
  type = list(object({
    zone    = string
    count   = number
    numbers = optional(list(number))
  }))

  validation {
    condition     = length(var.placements) >= 1 && length(var.placements) <= 30
    error_message = "placements is empty or too long: it needs 1 to 30 entries (e.g. [{ zone = \"us-central1-a\", count = 1 }]; 10 regions x 3 zones at most)."
  }

  validation {
    condition     = alltrue([for p in var.placements : can(regex("^[a-z]+-[a-z]+[0-9]+-[a-z]$", p.zone))])
    error_message = "Every placement zone must be a GCP zone, e.g. us-central1-a."
  }

  validation {
    condition     = length(distinct([for p in var.placements : p.zone])) == length(var.placements)
    error_message = "Each zone may appear only once in placements; raise its count instead."
  }

  validation {
    condition     = alltrue([for p in var.placements : p.count >= 0 && p.count <= 16 && floor(p.count) == p.count])
    error_message = "Every placement count must be a whole number from 0 to 16."
  }

  validation {
    condition = alltrue([
      for p in var.placements : p.numbers == null || try(
        length(p.numbers) == p.count && length(distinct(p.numbers)) == length(p.numbers) &&
        alltrue([for n in p.numbers : n >= 1 && n <= 99 && floor(n) == n]),
      false)
    ])
    error_message = "A placement's numbers must be distinct whole numbers from 1 to 99, as many as its count."
  }

  # sum() of an empty list is an error, not false: start from 0, and leave the empty list
  # to the first validation, so it gets that message alone (not "Invalid function argument").
  validation {
    condition     = length(var.placements) == 0 || sum(concat([0], [for p in var.placements : p.count])) >= 1
    error_message = "placements must create at least one host (every count is 0)."
  }

  # GCE names are at most 63 characters: <name_prefix>-<zone>-<n>.
  validation {
    condition = alltrue([
      for p in var.placements :
      length("${var.name_prefix}-${p.zone}-${max(concat([p.count], p.numbers == null ? [] : p.numbers)...)}") <= 63
    ])
    error_message = "A host name <name_prefix>-<zone>-<n> would be longer than GCE's 63 characters: shorten name_prefix."
  }
}

variable "subnetworks" {
  description = "region => subnet self link (the network module's `subnetworks` output)."
  type        = map(string)

  validation {
    condition     = length(var.subnetworks) >= 1
    error_message = "subnetworks needs at least one region."
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
  description = "Accelerator type attached to every host (ignored when gpu_count is 0)."
  type        = string
  default     = "nvidia-tesla-t4"

  validation {
    condition     = can(regex("^nvidia-[a-z0-9-]+$", var.gpu_type))
    error_message = "gpu_type must be a GCE accelerator type, e.g. nvidia-tesla-t4."
  }
}

variable "gpu_count" {
  description = "GPUs per host: 0 (none), 1, 2 or 4 (the counts a T4 allows on N1)."
  type        = number
  default     = 1

  validation {
    condition     = contains([0, 1, 2, 4], var.gpu_count)
    error_message = "gpu_count must be 0, 1, 2 or 4."
  }
}

variable "image_project" {
  description = "Project of the boot image."
  type        = string
  default     = "debian-cloud"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.image_project))
    error_message = "image_project must be a GCP project ID, e.g. debian-cloud."
  }
}

variable "image_family" {
  description = "Image family used when `image_name` is empty: new hosts get the family's newest image."
  type        = string
  default     = "debian-12"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,62}$", var.image_family))
    error_message = "image_family must be an image family name, e.g. debian-12."
  }
}

variable "image_name" {
  description = "Exact image name to pin (e.g. debian-12-bookworm-v20250610); empty: the newest image of `image_family`."
  type        = string
  default     = ""

  validation {
    condition     = var.image_name == "" || can(regex("^[a-z][a-z0-9-]{0,62}$", var.image_name))
    error_message = "image_name must be empty or an image name, e.g. debian-12-bookworm-v20250610."
  }
}

variable "boot_disk_size_gb" {
  description = "Boot disk size in GB (the driver, CUDA toolkit and apt archives need about 15 GB)."
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

variable "assign_public_ip" {
  description = "Give every host an ephemeral public IP; the contract then says connection = direct with that address. Default false: private only, SSH through IAP."
  type        = bool
  default     = false
}

variable "network_tags" {
  description = "Network tags of every host; the firewall module targets these."
  type        = list(string)

  validation {
    condition     = length(var.network_tags) > 0 && alltrue([for t in var.network_tags : can(regex("^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$", t))])
    error_message = "network_tags needs at least one tag; tags are 1-63 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "enable_secure_boot" {
  description = "Shielded VM Secure Boot. Default false: the NVIDIA module built by DKMS is unsigned and would not load. Enable only with signed modules (MOK enrolled); see README."
  type        = bool
  default     = false
}

variable "enable_oslogin" {
  description = "OS Login (metadata enable-oslogin=TRUE): SSH access follows IAM; ssh_public_key must then be in the user's OS Login profile."
  type        = bool
  default     = true
}

variable "ssh_user" {
  description = "The login user Ansible uses: with OS Login, the POSIX username of the identity that runs Ansible (gcloud compute os-login describe-profile); without, the user created from ssh_public_key."
  type        = string

  validation {
    condition     = can(regex("^[a-z_][a-z0-9_.-]{0,31}$", var.ssh_user)) && var.ssh_user != "root"
    error_message = "ssh_user must be a POSIX user name (lowercase, up to 32 characters) other than root."
  }
}

variable "ssh_public_key" {
  description = "SSH public key put in instance metadata for ssh_user when OS Login is off (ignored with OS Login)."
  type        = string
  default     = ""

  validation {
    condition     = var.ssh_public_key == "" || can(regex("^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp[0-9]+) [A-Za-z0-9+/=]+", trimspace(var.ssh_public_key)))
    error_message = "ssh_public_key must be empty or an OpenSSH public key (ssh-ed25519 AAAA...)."
  }
}

variable "groups" {
  description = "Ansible groups of every host (the output contract's groups)."
  type        = list(string)
  default     = ["inference"]

  validation {
    condition     = length(var.groups) > 0 && alltrue([for g in var.groups : can(regex("^[a-z][a-z0-9_]*$", g))])
    error_message = "groups needs at least one group; names are lowercase letters, digits and underscores."
  }
}

variable "labels" {
  description = "Extra labels for every host (environment, managed-by, app and created are always set). They go on the instance only, not on its boot disk: see README, Labels."
  type        = map(string)
  default     = {}

  validation {
    condition = alltrue([
      for k, v in var.labels : can(regex("^[a-z][a-z0-9_-]{0,62}$", k)) && can(regex("^[a-z0-9_-]{0,63}$", v))
    ])
    error_message = "Label keys must start with a lowercase letter; keys and values are up to 63 lowercase letters, digits, _ or -."
  }
}

variable "service_account_email" {
  description = "Email of the service account the hosts run as, created once per project by terraform/bootstrap/gcs_state (output host_service_account_emails): least privilege (logWriter + metricWriter), never the default compute account."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z][a-z0-9-]{4,28}[a-z0-9]\\.iam\\.gserviceaccount\\.com$", var.service_account_email))
    error_message = "service_account_email must be a user-managed service account (<name>@<project>.iam.gserviceaccount.com), e.g. the bootstrap root's dml-gcp-vm@...; the default compute account is refused."
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
