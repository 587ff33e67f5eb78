terraform {
  # >= 1.9: validations refer to other variables (the HA zone and the tier).
  required_version = ">= 1.9.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.0"
    }
  }
}
