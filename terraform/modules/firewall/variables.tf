variable "project_id" {
  description = "GCP project that owns the network."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a GCP project ID: 6-30 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "name_prefix" {
  description = "Prefix of the rule names (<prefix>-allow-api, <prefix>-allow-ssh)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,39}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 2-41 lowercase letters, digits or dashes, starting with a letter and not ending with a dash."
  }
}

variable "network" {
  description = "Self link or ID of the VPC the rules belong to."
  type        = string

  validation {
    condition     = length(trimspace(var.network)) > 0
    error_message = "network must not be empty."
  }
}

variable "target_tags" {
  description = "Network tags of the instances the rules apply to (the gpu_vm module's network_tags)."
  type        = list(string)

  validation {
    condition     = length(var.target_tags) > 0 && alltrue([for t in var.target_tags : can(regex("^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$", t))])
    error_message = "target_tags needs at least one tag; tags are 1-63 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "api_port" {
  description = "TCP port of the inference API on the hosts."
  type        = number
  default     = 8080

  validation {
    condition     = var.api_port >= 1 && var.api_port <= 65535 && floor(var.api_port) == var.api_port && var.api_port != 22
    error_message = "api_port must be a whole number from 1 to 65535 other than 22."
  }
}

variable "api_source_ranges" {
  description = "IPv4 CIDRs allowed to reach the API port, in addition to Google's load balancer and health-check ranges (always allowed)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.api_source_ranges : can(cidrhost(c, 0)) && can(regex("^[0-9.]+/[0-9]+$", c))])
    error_message = "Every api_source_ranges entry must be an IPv4 CIDR, e.g. 203.0.113.0/24."
  }

  # The whole internet, however it is split: CIDR blocks are either disjoint or nested, so
  # the union of a set is as large as the sum of the (distinct) blocks that no block with a
  # shorter prefix contains; 2^32 addresses is all of IPv4 (["0.0.0.0/1", "128.0.0.0/1"]
  # is 0.0.0.0/0 too). The inner loop runs over the raw list: n x n, not n x n x n.
  validation {
    condition = var.allow_api_from_anywhere_i_understand_the_risk || try(sum(concat([0], [
      for a in distinct([for c in var.api_source_ranges : "${cidrhost(c, 0)}/${split("/", c)[1]}"]) :
      pow(2, 32 - tonumber(split("/", a)[1]))
      if !anytrue([
        for b in var.api_source_ranges :
        tonumber(split("/", b)[1]) < tonumber(split("/", a)[1]) && cidrhost("${split("/", a)[0]}/${split("/", b)[1]}", 0) == cidrhost(b, 0)
      ])
    ])) < 4294967296, true)
    error_message = "api_source_ranges covers 0.0.0.0/0, the whole internet (one /0, or ranges that together cover it such as 0.0.0.0/1 + 128.0.0.0/1). Name the networks that need the API, or set allow_api_from_anywhere_i_understand_the_risk = true."
  }
}

variable "allow_api_from_anywhere_i_understand_the_risk" {
  description = "Let api_source_ranges contain 0.0.0.0/0, exposing the unauthenticated inference API to the internet. Leave false."
  type        = bool
  default     = false
}

variable "ssh_source_ranges" {
  description = "IPv4 CIDRs allowed to reach SSH (port 22). Default: only Identity-Aware Proxy's TCP forwarding range."
  type        = list(string)
  default     = ["35.235.240.0/20"]

  validation {
    condition     = length(var.ssh_source_ranges) > 0 && alltrue([for c in var.ssh_source_ranges : can(cidrhost(c, 0)) && can(regex("^[0-9.]+/[0-9]+$", c))])
    error_message = "ssh_source_ranges needs at least one entry; every entry must be an IPv4 CIDR, e.g. 35.235.240.0/20."
  }

  # The whole internet, however it is split: CIDR blocks are either disjoint or nested, so
  # the union of a set is as large as the sum of the (distinct) blocks that no block with a
  # shorter prefix contains; 2^32 addresses is all of IPv4 (["0.0.0.0/1", "128.0.0.0/1"]
  # is 0.0.0.0/0 too). The inner loop runs over the raw list: n x n, not n x n x n.
  validation {
    condition = var.allow_ssh_from_anywhere_i_understand_the_risk || try(sum(concat([0], [
      for a in distinct([for c in var.ssh_source_ranges : "${cidrhost(c, 0)}/${split("/", c)[1]}"]) :
      pow(2, 32 - tonumber(split("/", a)[1]))
      if !anytrue([
        for b in var.ssh_source_ranges :
        tonumber(split("/", b)[1]) < tonumber(split("/", a)[1]) && cidrhost("${split("/", a)[0]}/${split("/", b)[1]}", 0) == cidrhost(b, 0)
      ])
    ])) < 4294967296, true)
    error_message = "ssh_source_ranges covers 0.0.0.0/0, SSH open to the whole internet (one /0, or ranges that together cover it such as 0.0.0.0/1 + 128.0.0.0/1). Use IAP (35.235.240.0/20) or name your networks, or set allow_ssh_from_anywhere_i_understand_the_risk = true."
  }
}

variable "allow_ssh_from_anywhere_i_understand_the_risk" {
  description = "Let ssh_source_ranges contain 0.0.0.0/0, exposing SSH to the internet. Leave false."
  type        = bool
  default     = false
}

variable "log_connections" {
  description = "Firewall Rules Logging on both rules (who connected, from where)."
  type        = bool
  default     = true
}
