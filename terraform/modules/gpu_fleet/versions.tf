terraform {
  # >= 1.9: validations refer to other variables (zones in the region, 1.5x boot-to-ready).
  required_version = ">= 1.9.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.0"
    }
  }
}
