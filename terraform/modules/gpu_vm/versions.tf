terraform {
  # >= 1.9: validations refer to other variables (GCE's 63-character names).
  required_version = ">= 1.9.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.0"
    }
    # time_static stamps each host's "created" label once, so the label never drifts.
    time = {
      source  = "hashicorp/time"
      version = "~> 0.12"
    }
  }
}
