terraform {
  # >= 1.9: a validation refers to another variable (readers and writers).
  required_version = ">= 1.9.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.0"
    }
  }
}
