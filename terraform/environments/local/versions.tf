terraform {
  required_version = ">= 1.5.0"

  # State stays on this machine: `invoke` passes -backend-config=path=.state/<env>/terraform.tfstate.
  # The local backend locks the state file, so two concurrent runs cannot corrupt it.
  backend "local" {}

  required_providers {
    lxd = {
      source  = "terraform-lxd/lxd"
      version = "1.5.0"
    }
  }
}

provider "lxd" {
  generate_client_certificates = false
  accept_remote_certificate    = false
  # The provider waits this long before its first look at a container it started or stopped
  # (then polls every 3 s); its 10 s default was ~9 s of every launch and every destroy.
  refresh_interval = "1s"
}
