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
