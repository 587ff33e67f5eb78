variable "environment" {
  description = "Name of the environment the hosts belong to (e.g. local, gcp)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,19}$", var.environment))
    error_message = "environment must be lowercase letters, digits and dashes, starting with a letter, at most 20 characters."
  }
}

variable "hosts" {
  description = "The hosts an environment created, in the output contract's shape (docs/output-contract.md)."
  type = list(object({
    name        = string
    address     = string
    ssh_user    = string
    ssh_port    = number
    groups      = list(string)
    gpu_type    = string
    gpu_count   = number
    zone        = string
    instance_id = string
    connection  = string
  }))

  validation {
    condition     = length(var.hosts) > 0
    error_message = "An environment must produce at least one host."
  }

  validation {
    condition     = length(distinct([for h in var.hosts : h.name])) == length(var.hosts)
    error_message = "Host names must be unique."
  }

  validation {
    condition     = alltrue([for h in var.hosts : can(cidrhost("${h.address}/32", 0))])
    error_message = "Every host address must be an IPv4 address."
  }

  validation {
    condition     = alltrue([for h in var.hosts : length(h.groups) > 0 && alltrue([for g in h.groups : can(regex("^[a-z][a-z0-9_]*$", g))])])
    error_message = "Every host needs at least one group; group names are lowercase letters, digits and underscores (Ansible group names)."
  }

  validation {
    condition     = alltrue([for h in var.hosts : h.gpu_count >= 0 && (h.gpu_count == 0) == (h.gpu_type == "none")])
    error_message = "gpu_count must be >= 0, and gpu_type must be \"none\" exactly when gpu_count is 0."
  }

  validation {
    condition     = alltrue([for h in var.hosts : contains(["direct", "iap"], h.connection)])
    error_message = "connection must be \"direct\" or \"iap\"."
  }
}
