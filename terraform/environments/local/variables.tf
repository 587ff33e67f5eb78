variable "environment" {
  description = "Environment name (prefix of every resource)."
  type        = string
  default     = "local"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,9}$", var.environment))
    error_message = "environment must be 1-10 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "host_count" {
  description = "Number of inference hosts."
  type        = number
  default     = 1

  validation {
    condition     = var.host_count >= 1 && var.host_count <= 50 && floor(var.host_count) == var.host_count
    error_message = "host_count must be a whole number from 1 to 50."
  }
}

variable "network_cidr" {
  description = "IPv4 subnet of the local cloud's bridge."
  type        = string
  default     = "10.150.77.0/24"

  validation {
    condition     = can(cidrhost(var.network_cidr, 0)) && can(regex("^[0-9.]+/(1[6-9]|2[0-8])$", var.network_cidr)) && try(cidrhost(var.network_cidr, 0) == split("/", var.network_cidr)[0], false)
    error_message = "network_cidr must be an IPv4 network address with a prefix length from /16 to /28, e.g. 10.150.77.0/24."
  }
}

variable "image" {
  description = "LXD image alias of the inference hosts: the host image, or the golden image of `invoke bake` (`rebuild --from-image`); invoke passes it (TF_VAR_image)."
  type        = string
}

variable "base_image" {
  description = "LXD image alias of the other hosts (load balancer): always the host image; invoke passes it. Empty: the same as image."
  type        = string
  default     = ""
}

variable "lb_count" {
  description = "Load-balancer hosts in front of the inference hosts: 1 (HAProxy, the front door) or 0 (none: clients reach the hosts directly)."
  type        = number
  default     = 1

  validation {
    condition     = contains([0, 1], var.lb_count)
    error_message = "lb_count must be 0 or 1."
  }
}

variable "storage_pool" {
  description = "LXD storage pool for root disks (bootstrap creates it)."
  type        = string
  default     = "disposable"
}

variable "cpu_limit" {
  description = "CPUs per host."
  type        = number
  default     = 2
}

variable "memory_limit" {
  description = "Memory per host."
  type        = string
  default     = "4GiB"
}

variable "ssh_public_key" {
  description = "The environment's generated SSH public key; invoke passes it (TF_VAR_ssh_public_key)."
  type        = string
}

variable "groups" {
  description = "Ansible groups of every host."
  type        = list(string)
  default     = ["inference"]
}

variable "apt_store_dir" {
  description = "The package store's published repositories on this machine, mounted read-only in every host; invoke passes ~/.cache/disposable-ml/apt-store/public (TF_VAR_apt_store_dir). Empty: none."
  type        = string
  default     = ""
}

variable "features_count" {
  description = "Feature-store hosts (Debian's Redis, the features group): 1 (the default) or 0 for none, when every request carries its own features."
  type        = number
  default     = 1

  validation {
    condition     = contains([0, 1], var.features_count)
    error_message = "features_count must be 0 or 1."
  }
}

variable "features_volume" {
  description = "LXD custom volume (in storage_pool) holding the feature store's data, mounted at /var/lib/redis. The controller makes and keeps it across destroy and rebuild (disposable/local/statevolume.py); set by `invoke provision`."
  type        = string
  default     = ""

  validation {
    condition     = var.features_count == 0 || var.features_volume != ""
    error_message = "features_count = 1 needs features_volume: the LXD volume that keeps Redis' data across rebuilds (invoke provision makes it)."
  }
}

variable "model_store_dir" {
  description = "The controller's versioned model store (disposable/state/models.py), mounted read-only in the inference hosts; set by `invoke provision`. Empty: no mount (Ansible copies the model from the controller)."
  type        = string
  default     = ""
}
