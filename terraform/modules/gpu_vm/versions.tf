terraform {
  required_version = ">= 1.5.0"

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
