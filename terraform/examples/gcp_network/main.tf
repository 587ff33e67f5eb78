# A private VPC in two regions (subnet + Cloud Router + Cloud NAT each). No cost while no
# VM uses the NAT.
#
#   terraform init && terraform apply -var project_id=my-dml-project
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
  description = "GCP project to create the example in."
  type        = string
}

module "network" {
  source = "../../modules/network"

  project_id = var.project_id
  name       = "dml-net-example"
  subnets = {
    us-central1  = "10.62.0.0/24"
    europe-west4 = "10.62.1.0/24"
  }
}

output "subnetworks" {
  description = "region => subnet self link."
  value       = module.network.subnetworks
}
