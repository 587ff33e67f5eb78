variable "project_id" {
  description = "GCP project to create the fleet in."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a GCP project ID: 6-30 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "environment" {
  description = "Environment name (prefix dml-<environment> of every resource, `environment` label, dml-environment metadata)."
  type        = string
  default     = "fleet"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,9}$", var.environment))
    error_message = "environment must be 1-10 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "regions" {
  description = "Where the fleet runs: region => the zones its managed instance group spreads over (zones that offer T4s). 1 region to 10; every region needs a subnet in `subnets`."
  type        = map(list(string))
  default = {
    us-central1 = ["us-central1-a", "us-central1-b", "us-central1-f"]
  }

  validation {
    condition     = length(var.regions) >= 1 && length(var.regions) <= 10
    error_message = "regions must name 1 to 10 regions."
  }

  validation {
    condition     = alltrue([for region, zones in var.regions : can(regex("^[a-z]+-[a-z]+[0-9]+$", region)) && length(zones) >= 1 && alltrue([for z in zones : startswith(z, "${region}-")])])
    error_message = "Every regions key must be a region and its value 1 or more zones of that region, e.g. { us-central1 = [\"us-central1-a\", \"us-central1-b\"] }."
  }
}

variable "subnets" {
  description = "region => subnet CIDR, one per region in `regions` (no overlaps; network module)."
  type        = map(string)
  default = {
    us-central1 = "10.70.0.0/20"
  }

  validation {
    condition     = length(var.subnets) >= 1
    error_message = "subnets needs at least one region."
  }

  validation {
    condition     = alltrue([for region in keys(var.regions) : contains(keys(var.subnets), region)])
    error_message = "Every region in `regions` needs a subnet CIDR in `subnets`."
  }
}

variable "host_service_account_email" {
  description = "Service account the hosts run as, made once per project by terraform/bootstrap/gcs_state (output host_service_account_emails, key fleet)."
  type        = string
}

variable "image_family" {
  description = "Image family the bake publishes to (invoke bake --env gcp: dml-gpu). The template pins the family's newest image by name."
  type        = string
  default     = "dml-gpu"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,62}$", var.image_family))
    error_message = "image_family must be an image family name, e.g. dml-gpu."
  }
}

variable "image_name" {
  description = "Pin one exact baked image (dml-gpu-<hash>) instead of the family's newest; empty: the newest of image_family."
  type        = string
  default     = ""

  validation {
    condition     = var.image_name == "" || can(regex("^[a-z][a-z0-9-]{0,62}$", var.image_name))
    error_message = "image_name must be empty or an image name, e.g. dml-gpu-0123abcd."
  }
}

variable "image_project" {
  description = "Project that holds the baked images; empty: project_id."
  type        = string
  default     = ""
}

variable "machine_type" {
  description = "Machine type of every host (T4 needs an N1 type)."
  type        = string
  default     = "n1-standard-4"
}

variable "gpu_type" {
  description = "Accelerator type of every host."
  type        = string
  default     = "nvidia-tesla-t4"
}

variable "gpu_count" {
  description = "GPUs per host (1, 2 or 4)."
  type        = number
  default     = 1
}

variable "boot_disk_size_gb" {
  description = "Boot disk size in GB (at least the baked image's)."
  type        = number
  default     = 50
}

variable "enable_secure_boot" {
  description = "Shielded VM Secure Boot; false because the DKMS-built NVIDIA module in the image is unsigned (gpu_vm/README.md)."
  type        = bool
  default     = false
}

variable "service_port" {
  description = "Port of the inference API on the hosts (inference_service_port)."
  type        = number
  default     = 8080
}

variable "service_config" {
  description = "Per-environment values for the service on the hosts, as one JSON document in the instance metadata key dml-config (e.g. { log_level = \"info\" }); changing one makes a new template and a rolling update."
  type        = map(string)
  default     = {}
}

variable "boot_to_ready_seconds" {
  description = "MEASURED seconds from instance creation to /readyz = 200 on a host from the baked image (docs/gcp.md, Fleet step 6). The auto-healing delay must be >= 1.5x it; the autoscaler cooldown >= it."
  type        = number
}

variable "autohealing_initial_delay_sec" {
  description = "Seconds auto-healing waits before judging a new host (>= 1.5x boot_to_ready_seconds)."
  type        = number
}

variable "cooldown_period_sec" {
  description = "Autoscaler cooldown: the measured boot-to-ready time (>= boot_to_ready_seconds)."
  type        = number
}

variable "min_replicas" {
  description = "Fewest hosts per region (>= 2)."
  type        = number
  default     = 2
}

variable "max_replicas" {
  description = "Most hosts per region (within the region's NVIDIA_T4_GPUS quota)."
  type        = number
  default     = 8
}

variable "max_rate_per_instance" {
  description = "Requests per second one host takes at most, from a MEASURED per-host rate (load one host at rising rates: the highest rate that meets the latency target; docs/gcp.md, Fleet step 3)."
  type        = number
}

variable "lb_utilization_target" {
  description = "Autoscalers scale out when hosts receive this share of max_rate_per_instance."
  type        = number
  default     = 0.8
}

variable "scaling_schedules" {
  description = "Scheduled minimum sizes for rush hour (per region), e.g. weekday mornings and evenings; start them boot_to_ready_seconds before the peak."
  type = list(object({
    name                  = string
    schedule              = string
    time_zone             = string
    duration_sec          = number
    min_required_replicas = number
    description           = optional(string, "")
  }))
  default = [
    {
      name                  = "morning-rush"
      description           = "Weekday morning peak (07:00-10:00), hosts ready before it starts."
      schedule              = "45 6 * * MON-FRI"
      time_zone             = "Europe/Berlin"
      duration_sec          = 11700
      min_required_replicas = 4
    },
    {
      name                  = "evening-rush"
      description           = "Weekday evening peak (16:00-19:00)."
      schedule              = "45 15 * * MON-FRI"
      time_zone             = "Europe/Berlin"
      duration_sec          = 11700
      min_required_replicas = 4
    },
  ]
}

variable "max_surge_fixed" {
  description = "Extra hosts a rolling update may create per region: at least the largest zone count in `regions` (GCE's rule for regional groups; max_unavailable is 0)."
  type        = number
  default     = 3

  validation {
    condition     = var.max_surge_fixed >= max([for zones in values(var.regions) : length(zones)]...)
    error_message = "max_surge_fixed must be at least the number of zones of every region (a regional group's fixed surge is 0 or >= its zone count, and 0 is impossible with max_unavailable 0)."
  }
}

variable "min_ready_sec" {
  description = "Seconds a new host must be healthy before a rolling update moves on."
  type        = number
  default     = 60
}

variable "domains" {
  description = "Domains for the front door's managed certificate (HTTPS); empty: HTTP only, for a first test (the API has no authentication)."
  type        = list(string)
  default     = []
}

variable "security_policy" {
  description = "Cloud Armor policy (self link) for the front door, e.g. per-client rate limiting; null: none."
  type        = string
  default     = null
}

variable "ssh_user" {
  description = "OS Login POSIX user that reaches the hosts over IAP (gcloud compute os-login describe-profile)."
  type        = string
}

variable "labels" {
  description = "Extra labels for the templates, disks and hosts."
  type        = map(string)
  default     = {}
}

variable "feature_store_enabled" {
  description = "Create the online feature store (Memorystore for Redis, private service access, AUTH + TLS, AUTH string in Secret Manager). Default false until the hosts' side is wired (the AUTH string from Secret Manager, Memorystore's CA for TLS: docs/gcp.md); false: requests carry their own features."
  type        = bool
  default     = false
}

variable "feature_store_region" {
  description = "Region of the feature store (and of the model bucket unless model_store_location is set): one of `regions`; empty: the first of them by name."
  type        = string
  default     = ""

  validation {
    condition     = var.feature_store_region == "" || contains(keys(var.regions), var.feature_store_region)
    error_message = "feature_store_region must be empty or one of the regions in `regions`."
  }
}

variable "feature_store_zone" {
  description = "Zone of the feature store in its region; empty: Memorystore chooses."
  type        = string
  default     = ""
}

variable "feature_store_tier" {
  description = "Memorystore tier: BASIC (cheapest, one node) or STANDARD_HA (replica in another zone, automatic failover, a higher price per GiB-hour; advisable for a production fleet)."
  type        = string
  default     = "BASIC"
}

variable "feature_store_memory_size_gb" {
  description = "Memorystore capacity in GiB (billed per provisioned GiB-hour)."
  type        = number
  default     = 1
}

variable "feature_store_redis_version" {
  description = "Memorystore Redis version, pinned (REDIS_7_0: Debian 12's redis-server of the local environment)."
  type        = string
  default     = "REDIS_7_0"
}

variable "feature_store_rdb_snapshot_period" {
  description = "RDB snapshot period of the feature store: ONE_HOUR, SIX_HOURS, TWELVE_HOURS or TWENTY_FOUR_HOURS (the most writes a failure can lose)."
  type        = string
  default     = "ONE_HOUR"
}

variable "feature_store_psa_cidr" {
  description = "Range of the VPC allocated to private service access (Memorystore takes a /29 or /28 of it): a network address /16 to /24 that overlaps no subnet in `subnets`."
  type        = string
  default     = "10.71.0.0/24"

  # Two CIDR blocks overlap exactly when one contains the other (as in the network module).
  validation {
    condition = !var.feature_store_enabled || try(!anytrue([
      for subnet in values(var.subnets) :
      (tonumber(split("/", subnet)[1]) <= tonumber(split("/", var.feature_store_psa_cidr)[1]) && cidrhost("${split("/", var.feature_store_psa_cidr)[0]}/${split("/", subnet)[1]}", 0) == split("/", subnet)[0])
      || (tonumber(split("/", var.feature_store_psa_cidr)[1]) <= tonumber(split("/", subnet)[1]) && cidrhost("${split("/", subnet)[0]}/${split("/", var.feature_store_psa_cidr)[1]}", 0) == split("/", var.feature_store_psa_cidr)[0])
    ]), true)
    error_message = "feature_store_psa_cidr overlaps a subnet in `subnets`: give private service access a range of its own, e.g. 10.71.0.0/24."
  }
}

variable "feature_store_auth_readers" {
  description = "Members besides the hosts' account that may read the AUTH string from Secret Manager (e.g. an operator: [\"user:alice@example.com\"])."
  type        = list(string)
  default     = []
}

variable "model_store_enabled" {
  description = "Create the versioned model bucket (<project>-dml-<environment>-models); the hosts' account gets objectViewer on it and the hosts the devstorage.read_only scope. Default false until the hosts pull models from it (docs/gcp.md)."
  type        = bool
  default     = false
}

variable "model_store_location" {
  description = "Location of the model bucket: a region, or a multi-region (US, EU) for a fleet across continents; empty: the feature store's region."
  type        = string
  default     = ""
}

variable "model_store_writers" {
  description = "Members that publish models into the bucket (CI, a person), e.g. [\"serviceAccount:dml-publisher@PROJECT.iam.gserviceaccount.com\"]: roles/storage.objectUser on that bucket."
  type        = list(string)
  default     = []
}

variable "model_store_noncurrent_versions" {
  description = "Noncurrent versions of every object the model bucket keeps (an overwritten index, a deleted model file)."
  type        = number
  default     = 10
}

variable "model_store_force_destroy" {
  description = "Let `terraform destroy` delete the model bucket with every model in it. false (default): a bucket holding objects stops the destroy. Apply with true before destroying to really delete."
  type        = bool
  default     = false
}
