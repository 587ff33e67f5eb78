# The firewall rules on an existing VPC: the API from one office range + Google health
# checks, SSH from IAP only.
#
#   terraform init && terraform apply -var project_id=my-dml-project -var network=default
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

variable "network" {
  description = "Name or self link of an existing VPC."
  type        = string
}

module "firewall" {
  source = "../../modules/firewall"

  project_id        = var.project_id
  name_prefix       = "dml-fw-example"
  network           = var.network
  target_tags       = ["dml-fw-example"]
  api_source_ranges = ["203.0.113.0/24"]
}

output "api_source_ranges" {
  description = "Every range that can reach the API."
  value       = module.firewall.api_source_ranges
}
