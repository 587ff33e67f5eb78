# A two-host T4 fleet in one region behind a global external Application Load Balancer,
# with local state and the same modules as terraform/environments/gcp_fleet. Needs a baked
# image in family dml-gpu (invoke bake --env gcp, docs/gcp.md). Costs money while it
# exists (two T4 hosts, about 1.10 USD/hour, plus the load balancer): destroy it when done.
#
#   terraform init
#   terraform apply -target=module.front_door -var project_id=my-dml-project -var ssh_user=alice_example_com
#   terraform apply -var project_id=my-dml-project -var ssh_user=alice_example_com
#   curl "$(terraform output -raw url)/readyz"
#   terraform destroy -var project_id=my-dml-project -var ssh_user=alice_example_com
terraform {
  required_version = ">= 1.9.0"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.0"
    }
  }
}

provider "google" {
  project = var.project_id
}

variable "project_id" {
  description = "GCP project to create the example in (it holds the baked dml-gpu images)."
  type        = string
}

variable "ssh_user" {
  description = "Your OS Login POSIX username (gcloud compute os-login describe-profile)."
  type        = string
}

variable "region" {
  description = "Region of the example fleet."
  type        = string
  default     = "us-central1"
}

variable "zones" {
  description = "Zones of the region that offer T4s."
  type        = list(string)
  default     = ["us-central1-a", "us-central1-b"]
}

data "google_compute_image" "serving" {
  project = var.project_id
  family  = "dml-gpu"
}

module "identity" {
  source = "../../modules/host_identity"

  project_id = var.project_id
  account_id = "dml-fleet-example-vm"
}

module "network" {
  source = "../../modules/network"

  project_id = var.project_id
  name       = "dml-fleet-example"
  subnets    = { (var.region) = "10.63.0.0/24" }
}

module "firewall" {
  source = "../../modules/firewall"

  project_id  = var.project_id
  name_prefix = "dml-fleet-example"
  network     = module.network.network_self_link
  target_tags = ["dml-fleet-example"]
}

module "fleet" {
  source = "../../modules/gpu_fleet"

  project_id            = var.project_id
  environment           = "example"
  region                = var.region
  zones                 = var.zones
  name_prefix           = "dml-fx"
  subnetwork            = module.network.subnetworks[var.region]
  network_tags          = ["dml-fleet-example"]
  service_account_email = module.identity.email
  source_image          = "projects/${var.project_id}/global/images/${data.google_compute_image.serving.name}"
  ssh_user              = var.ssh_user

  # Placeholders: measure them (docs/gcp.md, Fleet).
  boot_to_ready_seconds         = 300
  autohealing_initial_delay_sec = 450
  cooldown_period_sec           = 300
  min_replicas                  = 2
  max_replicas                  = 2
  max_surge_fixed               = length(var.zones)

  depends_on = [module.firewall]
}

module "front_door" {
  source = "../../modules/front_door"

  project_id            = var.project_id
  name                  = "dml-fleet-example"
  backends              = { (var.region) = module.fleet.instance_group }
  max_rate_per_instance = 40
}

output "url" {
  description = "Where the example fleet answers (GET /readyz, POST /v1/predict)."
  value       = module.front_door.url
}

output "hosts" {
  description = "The group's hosts in the output contract's shape."
  value       = module.fleet.hosts
}
