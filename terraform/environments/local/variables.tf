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
  description = "LXD image alias of the host image; bootstrap builds it and invoke passes it (TF_VAR_image)."
  type        = string
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
