# One n1-standard-4 + NVIDIA T4 host in a private VPC (Cloud NAT, IAP SSH), with the
# same modules as the gcp environment and local state. Costs money while it exists
# (about 0.55 USD/hour on demand in us-central1): destroy it when done.
#
#   terraform init
#   terraform apply -var project_id=my-dml-project -var ssh_user=alice_example_com
#   gcloud compute ssh $(terraform output -json hosts | jq -r '.[0].name') --tunnel-through-iap --zone us-central1-a
#   terraform destroy -var project_id=my-dml-project -var ssh_user=alice_example_com
terraform {
  required_version = ">= 1.9.0"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.0"
    }
    time = {
      source  = "hashicorp/time"
      version = "~> 0.12"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = "us-central1"
}

variable "project_id" {
  description = "GCP project to create the example in."
  type        = string
}

variable "ssh_user" {
  description = "Your OS Login POSIX username (gcloud compute os-login describe-profile)."
  type        = string
}

variable "zone" {
  description = "Zone of the host (must be in us-central1 and offer T4 GPUs)."
  type        = string
  default     = "us-central1-a"
}

module "network" {
  source = "../../modules/network"

  project_id = var.project_id
  name       = "dml-example"
  subnets    = { us-central1 = "10.61.0.0/24" }
}

module "firewall" {
  source = "../../modules/firewall"

  project_id  = var.project_id
  name_prefix = "dml-example"
  network     = module.network.network_self_link
  target_tags = ["dml-example-inference"]
}

# In the environments this account comes from the bootstrap root; the example is
# self-contained, so it makes its own (it needs IAM admin rights, like the bootstrap).
module "identity" {
  source = "../../modules/host_identity"

  project_id = var.project_id
  account_id = "dml-example-vm"
}

module "hosts" {
  source = "../../modules/gpu_vm"

  project_id   = var.project_id
  environment  = "example"
  name_prefix  = "dml-example"
  placements   = [{ zone = var.zone, count = 1 }]
  subnetworks  = module.network.subnetworks
  network_tags = ["dml-example-inference"]
  ssh_user     = var.ssh_user

  service_account_email = module.identity.email
}

module "contract" {
  source = "../../modules/host_contract"

  environment = "example"
  hosts       = module.hosts.hosts
}

output "hosts" {
  description = "The example host in the output contract's shape."
  value       = module.contract.hosts
}
