variable "name" {
  description = "Name of the LXD bridge (a Linux interface name: at most 15 characters)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,14}$", var.name))
    error_message = "name must be 1-15 lowercase letters, digits or dashes, starting with a letter (Linux interface names are limited to 15 characters)."
  }
}

variable "cidr" {
  description = "IPv4 subnet of the bridge, e.g. 10.150.77.0/24. The bridge takes the first address; hosts get static addresses from it."
  type        = string

  validation {
    condition     = can(cidrhost(var.cidr, 0)) && can(regex("^[0-9.]+/(1[6-9]|2[0-8])$", var.cidr)) && try(cidrhost(var.cidr, 0) == split("/", var.cidr)[0], false)
    error_message = "cidr must be an IPv4 network address with a prefix length from /16 to /28, e.g. 10.150.77.0/24 (not a host address such as 10.150.77.5/24)."
  }
}

variable "nat" {
  description = "Masquerade outbound traffic so hosts reach the package mirrors."
  type        = bool
  default     = true
}

variable "description" {
  description = "Description stored on the LXD network."
  type        = string
  default     = "disposable-ml local cloud network"
}
