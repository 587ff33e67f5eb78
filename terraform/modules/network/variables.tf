variable "project_id" {
  description = "GCP project that owns the network."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a GCP project ID: 6-30 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "name" {
  description = "Name of the VPC; subnets, router and NAT are named after it."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,39}[a-z0-9]$", var.name))
    error_message = "name must be 2-41 lowercase letters, digits or dashes, starting with a letter and not ending with a dash."
  }

  # Subnets, routers and NATs are <name>-<region>; GCE names are at most 63 characters.
  validation {
    condition     = alltrue([for region in keys(var.subnets) : length("${var.name}-${region}") <= 63])
    error_message = "<name>-<region> (the subnet, router and NAT names) would be longer than GCE's 63 characters for some region in subnets: shorten name."
  }
}

variable "subnets" {
  description = "One subnet per region, region => primary IPv4 CIDR (e.g. { us-central1 = \"10.60.0.0/20\" }). Add a region here to scale out to it; each region also gets a Cloud Router + Cloud NAT."
  type        = map(string)

  validation {
    condition     = length(var.subnets) >= 1 && length(var.subnets) <= 10
    error_message = "subnets must name 1 to 10 regions."
  }

  validation {
    condition     = alltrue([for region in keys(var.subnets) : can(regex("^[a-z]+-[a-z]+[0-9]+$", region))])
    error_message = "Every subnets key must be a GCP region, e.g. us-central1 or europe-west4."
  }

  validation {
    condition = alltrue([
      for cidr in values(var.subnets) :
      can(regex("^[0-9.]+/(1[6-9]|2[0-9])$", cidr)) && try(cidrhost(cidr, 0) == split("/", cidr)[0], false)
    ])
    error_message = "Every subnet CIDR must be an IPv4 network address with a prefix length from /16 to /29, e.g. 10.60.0.0/20."
  }

  validation {
    condition     = length(distinct(values(var.subnets))) == length(var.subnets)
    error_message = "Two regions cannot share the same subnet CIDR."
  }

  # Two CIDR blocks overlap exactly when one contains the other: b contains a when b's
  # prefix is not longer and a's network address, cut to b's prefix, is b's address.
  validation {
    condition = try(!anytrue([
      for a in values(var.subnets) : anytrue([
        for b in values(var.subnets) :
        a != b && tonumber(split("/", b)[1]) <= tonumber(split("/", a)[1]) && cidrhost("${split("/", a)[0]}/${split("/", b)[1]}", 0) == split("/", b)[0]
      ])
    ]), true)
    error_message = "Subnet CIDRs must not overlap (one region's range contains another's, e.g. 10.60.0.0/16 and 10.60.4.0/22): give every region its own range."
  }
}

variable "flow_logs" {
  description = "Record VPC flow logs on every subnet (sampled at 50%, aggregated every 10 minutes)."
  type        = bool
  default     = true
}

variable "nat_log_filter" {
  description = "Which Cloud NAT events to log: ERRORS_ONLY, TRANSLATIONS_ONLY or ALL."
  type        = string
  default     = "ERRORS_ONLY"

  validation {
    condition     = contains(["ERRORS_ONLY", "TRANSLATIONS_ONLY", "ALL"], var.nat_log_filter)
    error_message = "nat_log_filter must be ERRORS_ONLY, TRANSLATIONS_ONLY or ALL."
  }
}
