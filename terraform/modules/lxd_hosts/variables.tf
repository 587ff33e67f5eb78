variable "environment" {
  description = "Environment name; prefixes every resource and labels every container (user.disposable-ml.environment)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,19}$", var.environment))
    error_message = "environment must be lowercase letters, digits and dashes, starting with a letter, at most 20 characters."
  }
}

variable "name_suffix" {
  description = "Appended to dml-<environment> in host and profile names (e.g. \"-lb\" for dml-local-lb-1), so several host kinds share an environment."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^(-[a-z][a-z0-9]{0,9})?$", var.name_suffix))
    error_message = "name_suffix must be empty or a dash followed by up to 10 lowercase letters and digits, e.g. -lb."
  }
}

variable "host_count" {
  description = "Number of hosts (system containers) to create."
  type        = number

  validation {
    condition     = var.host_count >= 1 && var.host_count <= 50 && floor(var.host_count) == var.host_count
    error_message = "host_count must be a whole number from 1 to 50."
  }
}

variable "image" {
  description = "Alias (or fingerprint) of the LXD image to launch; bootstrap builds and imports it (images/debian12)."
  type        = string

  validation {
    condition     = length(trimspace(var.image)) > 0
    error_message = "image must name an LXD image alias or fingerprint; run ./bootstrap.sh setup to build it."
  }
}

variable "network_name" {
  description = "LXD network the hosts attach to (see the lxd_network module)."
  type        = string
}

variable "network_cidr" {
  description = "Subnet of that network; host N gets the static address cidrhost(cidr, first_host_number + N)."
  type        = string

  validation {
    condition     = can(cidrhost(var.network_cidr, 0))
    error_message = "network_cidr must be an IPv4 CIDR such as 10.150.77.0/24."
  }
}

variable "first_host_number" {
  description = "Host number of the first host's address inside network_cidr."
  type        = number
  default     = 10

  validation {
    condition     = var.first_host_number >= 2
    error_message = "first_host_number must be at least 2 (.0 is the network, .1 the bridge)."
  }
}

variable "storage_pool" {
  description = "LXD storage pool for the hosts' root disks."
  type        = string
  default     = "disposable"
}

variable "cpu_limit" {
  description = "CPUs each host may use (limits.cpu)."
  type        = number
  default     = 2

  validation {
    condition     = var.cpu_limit >= 1 && floor(var.cpu_limit) == var.cpu_limit
    error_message = "cpu_limit must be a whole number >= 1."
  }
}

variable "memory_limit" {
  description = "Memory each host may use (limits.memory), e.g. 4GiB."
  type        = string
  default     = "4GiB"

  validation {
    condition     = can(regex("^[1-9][0-9]*(MiB|GiB)$", var.memory_limit))
    error_message = "memory_limit must look like 512MiB or 4GiB."
  }
}

variable "ssh_user" {
  description = "Non-root login user that exists in the image (passwordless sudo) and receives ssh_public_key."
  type        = string
  default     = "deploy"

  validation {
    condition     = can(regex("^[a-z_][a-z0-9_-]{0,31}$", var.ssh_user)) && var.ssh_user != "root"
    error_message = "ssh_user must be a valid, non-root Unix user name."
  }
}

variable "ssh_user_uid" {
  description = "UID (and GID) of ssh_user in the image."
  type        = number
  default     = 1000
}

variable "ssh_public_key" {
  description = "OpenSSH public key authorised for ssh_user (the environment's generated ed25519 key)."
  type        = string

  validation {
    condition     = can(regex("^ssh-(ed25519|rsa) [A-Za-z0-9+/=]+", var.ssh_public_key))
    error_message = "ssh_public_key must be an OpenSSH public key (ssh-ed25519 AAAA...)."
  }
}

variable "groups" {
  description = "Ansible groups every host belongs to."
  type        = list(string)
  default     = ["inference"]
}

variable "zone" {
  description = "Zone reported in the output contract."
  type        = string
  default     = "local"
}

variable "apt_store_dir" {
  description = "Directory of the package store's published repositories (the apt lock's packages, signed) on the LXD host; mounted read-only in every container at /var/lib/dml-store, where the base role points apt. Empty: no mount."
  type        = string
  default     = ""

  validation {
    condition     = var.apt_store_dir == "" || startswith(var.apt_store_dir, "/")
    error_message = "apt_store_dir must be an absolute path, or empty."
  }
}

variable "data_volume" {
  description = "LXD custom storage volume (in storage_pool) mounted read-write at data_volume_path: state that outlives the host (the feature store's data). Made and kept by the controller, never by Terraform. Empty: none. A volume attaches to one host: use with host_count = 1."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^([a-z0-9][a-z0-9-]{0,62})?$", var.data_volume))
    error_message = "data_volume must be empty or an LXD volume name (lowercase letters, digits, dashes)."
  }
}

variable "data_volume_path" {
  description = "Where data_volume is mounted in the host."
  type        = string
  default     = "/var/lib/dml-data"

  validation {
    condition     = startswith(var.data_volume_path, "/") && !strcontains(var.data_volume_path, "..")
    error_message = "data_volume_path must be an absolute path without '..'."
  }
}

variable "model_store_dir" {
  description = "Directory of the versioned model store on the LXD host; mounted read-only in every host at /var/lib/dml-models, where hosts pull the version they serve from. Empty: no mount."
  type        = string
  default     = ""

  validation {
    condition     = var.model_store_dir == "" || startswith(var.model_store_dir, "/")
    error_message = "model_store_dir must be empty or an absolute path."
  }
}
