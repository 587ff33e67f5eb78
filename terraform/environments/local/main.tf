# The local cloud: an LXD bridge + N system containers. Same output contract as gcp.
module "network" {
  source = "../../modules/lxd_network"

  name = "dml-${var.environment}"
  cidr = var.network_cidr
}

module "hosts" {
  source = "../../modules/lxd_hosts"

  environment    = var.environment
  host_count     = var.host_count
  image          = var.image
  network_name   = module.network.name
  network_cidr   = module.network.cidr
  storage_pool   = var.storage_pool
  cpu_limit      = var.cpu_limit
  memory_limit   = var.memory_limit
  ssh_public_key = var.ssh_public_key
  groups         = var.groups
  zone           = "local"
  apt_store_dir  = var.apt_store_dir
}

module "contract" {
  source = "../../modules/host_contract"

  environment = var.environment
  hosts       = module.hosts.hosts
}
