variable "project_id" {
  description = "GCP project of the feature store."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a GCP project ID: 6-30 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "environment" {
  description = "Environment name (the `environment` label)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,19}$", var.environment))
    error_message = "environment must be 1-20 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "name" {
  description = "Memorystore instance ID; the private service access range is <name>-psa, the AUTH secret <name>-auth."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,38}[a-z0-9]$", var.name))
    error_message = "name must be 2-40 lowercase letters, digits or dashes, starting with a letter and not ending with a dash (a Memorystore instance ID)."
  }
}

variable "region" {
  description = "Region of the instance (and of the secret's only replica), e.g. us-central1."
  type        = string

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a GCP region, e.g. us-central1."
  }
}

variable "zone" {
  description = "Zone of the instance (the primary's, for STANDARD_HA), e.g. the hosts' zone; empty: Memorystore chooses one in `region`."
  type        = string
  default     = ""

  validation {
    condition     = var.zone == "" || (can(regex("^[a-z]+-[a-z]+[0-9]+-[a-z]$", var.zone)) && startswith(var.zone, "${var.region}-"))
    error_message = "zone must be empty or a zone of region, e.g. us-central1-a for us-central1."
  }
}

variable "alternative_zone" {
  description = "STANDARD_HA only, with `zone` set: the replica's zone, another zone of `region`; empty: Memorystore chooses."
  type        = string
  default     = ""

  validation {
    condition     = var.alternative_zone == "" || (var.tier == "STANDARD_HA" && var.zone != "" && var.alternative_zone != var.zone && startswith(var.alternative_zone, "${var.region}-"))
    error_message = "alternative_zone needs tier = STANDARD_HA and zone set, and must be another zone of region than zone."
  }
}

variable "network" {
  description = "ID or self link of the VPC the instance is reachable from (the network module's network_id): the private service access range and peering are made in it."
  type        = string

  validation {
    condition     = can(regex("projects/[^/]+/global/networks/[^/]+$", var.network))
    error_message = "network must be a VPC's ID or self link (projects/<project>/global/networks/<name>)."
  }
}

variable "psa_cidr" {
  description = "Range allocated to private service access in the VPC (network address, /16 to /24): Memorystore takes a /29 (BASIC) or /28 (STANDARD_HA) from it. Must not overlap any subnet of the VPC."
  type        = string
  default     = "10.61.0.0/24"

  validation {
    condition     = can(regex("^[0-9.]+/(1[6-9]|2[0-4])$", var.psa_cidr)) && try(cidrhost(var.psa_cidr, 0) == split("/", var.psa_cidr)[0], false)
    error_message = "psa_cidr must be an IPv4 network address with a prefix length from /16 to /24, e.g. 10.61.0.0/24."
  }
}

variable "tier" {
  description = "BASIC (one node: cheapest; a failure or maintenance restarts it from the last RDB snapshot) or STANDARD_HA (primary + replica in another zone, automatic failover, a higher price per GiB-hour)."
  type        = string
  default     = "BASIC"

  validation {
    condition     = contains(["BASIC", "STANDARD_HA"], var.tier)
    error_message = "tier must be BASIC or STANDARD_HA."
  }
}

variable "memory_size_gb" {
  description = "Memory of the instance in GiB (Memorystore bills per provisioned GiB-hour)."
  type        = number
  default     = 1

  validation {
    condition     = var.memory_size_gb >= 1 && var.memory_size_gb <= 300 && floor(var.memory_size_gb) == var.memory_size_gb
    error_message = "memory_size_gb must be a whole number of GiB from 1 to 300."
  }
}

variable "redis_version" {
  description = "Redis version, pinned (REDIS_7_0 matches Debian 12's redis-server 7.0 of the local environment). A change is an in-place upgrade by Memorystore; no downgrade."
  type        = string
  default     = "REDIS_7_0"

  validation {
    condition     = contains(["REDIS_6_X", "REDIS_7_0", "REDIS_7_2"], var.redis_version)
    error_message = "redis_version must be REDIS_6_X, REDIS_7_0 or REDIS_7_2 (a Memorystore version that supports AUTH and TLS)."
  }
}

variable "redis_configs" {
  description = "Redis configuration parameters Memorystore allows (e.g. { maxmemory-policy = \"volatile-ttl\" }); empty: Memorystore's defaults."
  type        = map(string)
  default     = {}
}

variable "persistence_mode" {
  description = "RDB (snapshots every rdb_snapshot_period; Memorystore has no AOF) or DISABLED (a restart loses everything)."
  type        = string
  default     = "RDB"

  validation {
    condition     = contains(["RDB", "DISABLED"], var.persistence_mode)
    error_message = "persistence_mode must be RDB or DISABLED (Memorystore for Redis offers no AOF)."
  }
}

variable "rdb_snapshot_period" {
  description = "How often an RDB snapshot is taken: the most writes a failure can lose (ONE_HOUR: up to an hour)."
  type        = string
  default     = "ONE_HOUR"

  validation {
    condition     = contains(["ONE_HOUR", "SIX_HOURS", "TWELVE_HOURS", "TWENTY_FOUR_HOURS"], var.rdb_snapshot_period)
    error_message = "rdb_snapshot_period must be ONE_HOUR, SIX_HOURS, TWELVE_HOURS or TWENTY_FOUR_HOURS."
  }
}

variable "maintenance_window" {
  description = "Weekly maintenance window (one hour, UTC): the day and the starting hour. Maintenance restarts a BASIC instance (data back from the last snapshot) and fails a STANDARD_HA one over."
  type = object({
    day  = string
    hour = number
  })
  default = {
    day  = "SUNDAY"
    hour = 3
  }

  validation {
    condition     = contains(["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"], var.maintenance_window.day)
    error_message = "maintenance_window.day must be MONDAY to SUNDAY."
  }

  validation {
    condition     = var.maintenance_window.hour >= 0 && var.maintenance_window.hour <= 23 && floor(var.maintenance_window.hour) == var.maintenance_window.hour
    error_message = "maintenance_window.hour must be a whole hour from 0 to 23 (UTC)."
  }
}

variable "auth_secret_accessors" {
  description = "Members that may read the AUTH string from Secret Manager (roles/secretmanager.secretAccessor on that one secret), e.g. [\"serviceAccount:dml-gcp-vm@PROJECT.iam.gserviceaccount.com\"]."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.auth_secret_accessors : can(regex("^(serviceAccount|user|group|principal|principalSet):[^\\s]+$", m))])
    error_message = "Every auth_secret_accessors entry must be an IAM member such as serviceAccount:NAME@PROJECT.iam.gserviceaccount.com (never allUsers or allAuthenticatedUsers)."
  }
}

variable "labels" {
  description = "Extra labels for the instance and the secret (environment, managed-by, app, component are always set)."
  type        = map(string)
  default     = {}
}
