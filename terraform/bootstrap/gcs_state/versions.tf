terraform {
  required_version = ">= 1.5.0"

  # Run once per project, with local state (terraform.tfstate here, git-ignored): this root
  # creates the bucket every other GCP root keeps its state in, so it cannot live there.
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
