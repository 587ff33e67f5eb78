variable "project_id" {
  description = "GCP project to create everything in."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a GCP project ID: 6-30 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "region" {
  description = "Default region of the google provider (hosts and subnets take theirs from `placements` and `subnets`); the feature store, its secret and the model bucket are created in it."
  type        = string
  default     = "us-central1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a GCP region, e.g. us-central1."
  }
}

variable "environment" {
  description = "Environment name (prefix of every resource, `environment` label)."
  type        = string
  default     = "gcp"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,9}$", var.environment))
    error_message = "environment must be 1-10 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "subnets" {
  description = "region => subnet CIDR. Every region used in `placements` needs one; add a region here to scale out to it."
  type        = map(string)
  default = {
    us-central1 = "10.60.0.0/20"
  }
}

variable "placements" {
  description = "Zones and host counts, e.g. [{ zone = \"us-central1-a\", count = 1 }]; optional `numbers` names a zone's hosts explicitly. `invoke provision --env gcp --zones ...` (zone fallback) sets it: the hosts already running, plus the rest in the zone being tried."
  type = list(object({
    zone    = string
    count   = number
    numbers = optional(list(number))
  }))
  default = [{ zone = "us-central1-a", count = 1 }]
}

variable "machine_type" {
  description = "GCE machine type of every host (T4 needs an N1 type)."
  type        = string
  default     = "n1-standard-4"
}

variable "gpu_type" {
  description = "Accelerator type of every host."
  type        = string
  default     = "nvidia-tesla-t4"
}

variable "gpu_count" {
  description = "GPUs per host (0, 1, 2 or 4)."
  type        = number
  default     = 1
}

variable "image_project" {
  description = "Project of the boot image: debian-cloud, or your own project for a baked dml-gpu-<hash> image (docs/gcp.md, Golden image)."
  type        = string
  default     = "debian-cloud"
}

variable "image_name" {
  description = "Exact Debian 12 image to pin (e.g. debian-12-bookworm-v20250610, or a baked dml-gpu-<hash>); empty: the newest of family debian-12."
  type        = string
  default     = ""
}

variable "boot_disk_size_gb" {
  description = "Boot disk size in GB."
  type        = number
  default     = 50
}

variable "assign_public_ip" {
  description = "Give hosts a public IP (contract connection = direct). Default false: SSH through IAP."
  type        = bool
  default     = false
}

variable "enable_secure_boot" {
  description = "Shielded VM Secure Boot; false because the DKMS-built NVIDIA module is unsigned (docs/gcp.md)."
  type        = bool
  default     = false
}

variable "api_port" {
  description = "Port of the inference API (inference_service_port)."
  type        = number
  default     = 8080
}

variable "api_source_ranges" {
  description = "IPv4 CIDRs that may reach the API, besides Google's load balancer/health-check ranges."
  type        = list(string)
  default     = []
}

variable "allow_api_from_anywhere_i_understand_the_risk" {
  description = "Permit 0.0.0.0/0 in api_source_ranges. Leave false."
  type        = bool
  default     = false
}

variable "ssh_source_ranges" {
  description = "IPv4 CIDRs that may reach SSH. Default: IAP's TCP forwarding range only."
  type        = list(string)
  default     = ["35.235.240.0/20"]
}

variable "allow_ssh_from_anywhere_i_understand_the_risk" {
  description = "Permit 0.0.0.0/0 in ssh_source_ranges. Leave false."
  type        = bool
  default     = false
}

variable "host_service_account_email" {
  description = "Service account the hosts run as, made once per project by terraform/bootstrap/gcs_state: `terraform -chdir=terraform/bootstrap/gcs_state output -json host_service_account_emails` (key gcp), e.g. dml-gcp-vm@PROJECT.iam.gserviceaccount.com."
  type        = string
}

variable "ssh_user" {
  description = "OS Login POSIX username of the identity that runs Ansible (gcloud compute os-login describe-profile --format='value(posixAccounts[0].username)')."
  type        = string
}

variable "ssh_public_key" {
  description = "The environment's generated SSH public key; invoke passes it (TF_VAR_ssh_public_key). Registered in oslogin_user's OS Login profile when that is set."
  type        = string
}

variable "oslogin_user" {
  description = "Email of the user or service account that runs Ansible; when set, ssh_public_key is added to its OS Login profile. Empty: add it yourself (gcloud compute os-login ssh-keys add)."
  type        = string
  default     = ""

  validation {
    condition     = var.oslogin_user == "" || can(regex("^[^@\\s]+@[^@\\s]+\\.[a-z]+$", var.oslogin_user))
    error_message = "oslogin_user must be empty or an email address."
  }
}

variable "groups" {
  description = "Ansible groups of every host."
  type        = list(string)
  default     = ["inference"]
}

variable "labels" {
  description = "Extra labels for every labelled resource (environment, managed-by, app, created are always set)."
  type        = map(string)
  default     = {}
}

variable "feature_store_enabled" {
  description = "Create the online feature store (Memorystore for Redis, private service access, AUTH + TLS, AUTH string in Secret Manager). Default false until the hosts' side is wired (the AUTH string from Secret Manager, Memorystore's CA for TLS: docs/gcp.md); false: requests carry their own features."
  type        = bool
  default     = false
}

variable "feature_store_tier" {
  description = "Memorystore tier: BASIC (cheapest, one node) or STANDARD_HA (replica in another zone, automatic failover, a higher price per GiB-hour)."
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

variable "feature_store_zone" {
  description = "Zone of the feature store in `region` (e.g. the hosts' zone); empty: Memorystore chooses."
  type        = string
  default     = ""
}

variable "feature_store_rdb_snapshot_period" {
  description = "RDB snapshot period of the feature store: ONE_HOUR, SIX_HOURS, TWELVE_HOURS or TWENTY_FOUR_HOURS (the most writes a failure can lose)."
  type        = string
  default     = "ONE_HOUR"
}

variable "feature_store_psa_cidr" {
  description = "Range of the VPC allocated to private service access (Memorystore takes a /29 of it): a network address /16 to /24 that overlaps no subnet in `subnets`."
  type        = string
  default     = "10.61.0.0/24"

  # Two CIDR blocks overlap exactly when one contains the other (as in the network module).
  validation {
    condition = !var.feature_store_enabled || try(!anytrue([
      for subnet in values(var.subnets) :
      (tonumber(split("/", subnet)[1]) <= tonumber(split("/", var.feature_store_psa_cidr)[1]) && cidrhost("${split("/", var.feature_store_psa_cidr)[0]}/${split("/", subnet)[1]}", 0) == split("/", subnet)[0])
      || (tonumber(split("/", var.feature_store_psa_cidr)[1]) <= tonumber(split("/", subnet)[1]) && cidrhost("${split("/", subnet)[0]}/${split("/", var.feature_store_psa_cidr)[1]}", 0) == split("/", var.feature_store_psa_cidr)[0])
    ]), true)
    error_message = "feature_store_psa_cidr overlaps a subnet in `subnets`: give private service access a range of its own, e.g. 10.61.0.0/24."
  }
}

variable "feature_store_auth_readers" {
  description = "Members besides the hosts' account that may read the AUTH string from Secret Manager, e.g. [\"user:alice@example.com\"] when Ansible on the controller fetches it for the hosts (docs/gcp.md)."
  type        = list(string)
  default     = []
}

variable "model_store_enabled" {
  description = "Create the versioned model bucket (<project>-dml-<environment>-models); the hosts' account gets objectViewer on it and the hosts the devstorage.read_only scope. Default false until the hosts pull models from it (docs/gcp.md)."
  type        = bool
  default     = false
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
