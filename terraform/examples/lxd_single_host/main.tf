# One Debian 12 system container on its own LXD bridge, using the same modules as the
# local environment. Run (after ./bootstrap.sh setup):
#
#   export TF_CLI_CONFIG_FILE=~/.cache/disposable-ml/terraform/cli.tfrc
#   terraform init
#   terraform apply -var image=$(lxc image list -c l --format csv | grep dml-debian12 | head -1) \
#                   -var "ssh_public_key=$(cat ~/.ssh/id_ed25519.pub)"
#   terraform destroy ...
terraform {
  required_version = ">= 1.5.0"
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
  # First look at a started/stopped container after 1 s (the provider's default is 10 s).
  refresh_interval = "1s"
}

variable "image" {
  description = "LXD image alias built by ./bootstrap.sh setup (dml-debian12-<hash>)."
  type        = string
}

variable "ssh_public_key" {
  description = "Public key for the deploy user."
  type        = string
}

module "network" {
  source = "../../modules/lxd_network"

  name = "dml-example"
  cidr = "10.150.99.0/24"
}

module "hosts" {
  source = "../../modules/lxd_hosts"

  environment    = "example"
  host_count     = 1
  image          = var.image
  network_name   = module.network.name
  network_cidr   = module.network.cidr
  ssh_public_key = var.ssh_public_key
  memory_limit   = "1GiB"
  cpu_limit      = 1
}

module "contract" {
  source = "../../modules/host_contract"

  environment = "example"
  hosts       = module.hosts.hosts
}

output "hosts" {
  description = "The example host in the output contract's shape."
  value       = module.contract.hosts
}
