variable "project_id" {
  description = "GCP project to create everything in."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a GCP project ID: 6-30 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "region" {
  description = "Default region of the google provider (resources take their region from `subnets` and `placements`)."
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
