terraform {
  # >= 1.9: the firewall module's validations refer to its override variables.
  required_version = ">= 1.9.0"

  # State in a GCS bucket (terraform/bootstrap/gcs_state creates it). Bucket and prefix are
  # given at init: terraform init -backend-config=backend.hcl (see backend.hcl.example).
  # GCS locks the state natively (a lock object next to it), so two runs cannot both write.
  backend "gcs" {}

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
  region  = var.region
}
