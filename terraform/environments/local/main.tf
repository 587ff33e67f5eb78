# The local cloud: an LXD bridge + N system containers. Same output contract as gcp.
module "network" {
  source = "../../modules/lxd_network"

  name = "dml-${var.environment}"
  cidr = var.network_cidr
}

module "hosts" {
  source = "../../modules/lxd_hosts"

  environment     = var.environment
  host_count      = var.host_count
  image           = var.image
  network_name    = module.network.name
  network_cidr    = module.network.cidr
  storage_pool    = var.storage_pool
  cpu_limit       = var.cpu_limit
  memory_limit    = var.memory_limit
  ssh_public_key  = var.ssh_public_key
  groups          = var.groups
  zone            = "local"
  apt_store_dir   = var.apt_store_dir
  model_store_dir = var.model_store_dir
}

# The front door: one HAProxy host in front of the inference hosts (the load_balancer role).
module "lb" {
  source = "../../modules/lxd_hosts"
  count  = var.lb_count

  environment       = var.environment
  name_suffix       = "-lb"
  host_count        = 1
  first_host_number = 2
  image             = var.base_image == "" ? var.image : var.base_image
  network_name      = module.network.name
  network_cidr      = module.network.cidr
  storage_pool      = var.storage_pool
  cpu_limit         = 1
  memory_limit      = "1GiB"
  ssh_public_key    = var.ssh_public_key
  groups            = ["lb"]
  zone              = "local"
  apt_store_dir     = var.apt_store_dir
}

# The online feature store: one Redis host whose data directory is the environment's state
# volume, so rebuilding any host (this one included) keeps the features.
module "features" {
  source = "../../modules/lxd_hosts"
  count  = var.features_count

  environment       = var.environment
  name_suffix       = "-features"
  host_count        = 1
  first_host_number = 3
  image             = var.base_image == "" ? var.image : var.base_image
  network_name      = module.network.name
  network_cidr      = module.network.cidr
  storage_pool      = var.storage_pool
  cpu_limit         = 1
  memory_limit      = "1GiB"
  ssh_public_key    = var.ssh_public_key
  groups            = ["features"]
  zone              = "local"
  apt_store_dir     = var.apt_store_dir
  data_volume       = var.features_volume
  data_volume_path  = "/var/lib/redis"
}

module "contract" {
  source = "../../modules/host_contract"

  environment = var.environment
  hosts       = concat(module.hosts.hosts, flatten(module.lb[*].hosts), flatten(module.features[*].hosts))
}
