terraform {
  # >= 1.9: the modules' validations refer to other variables.
  required_version = ">= 1.9.0"

  # State in the GCS bucket made by terraform/bootstrap/gcs_state, under its own prefix:
  #   terraform -chdir=terraform/environments/gcp_fleet init -backend-config=backend.hcl
  backend "gcs" {}

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
