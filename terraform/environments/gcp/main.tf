# Production: GCE hosts with NVIDIA T4 GPUs in a private VPC. Same output contract as local.
locals {
  name = "dml-${var.environment}"
  # The firewall rules find the hosts by this network tag.
  host_tag = "dml-${var.environment}-inference"
}

module "network" {
  source = "../../modules/network"

  project_id = var.project_id
  name       = local.name
  subnets    = var.subnets
}

module "firewall" {
  source = "../../modules/firewall"

  project_id                                    = var.project_id
  name_prefix                                   = local.name
  network                                       = module.network.network_self_link
  target_tags                                   = [local.host_tag]
  api_port                                      = var.api_port
  api_source_ranges                             = var.api_source_ranges
  allow_api_from_anywhere_i_understand_the_risk = var.allow_api_from_anywhere_i_understand_the_risk
  ssh_source_ranges                             = var.ssh_source_ranges
  allow_ssh_from_anywhere_i_understand_the_risk = var.allow_ssh_from_anywhere_i_understand_the_risk
}

# With OS Login, the key Ansible uses must be in the OS Login profile of whoever runs it.
resource "google_os_login_ssh_public_key" "ansible" {
  count = var.oslogin_user == "" ? 0 : 1

  project = var.project_id
  user    = var.oslogin_user
  key     = trimspace(var.ssh_public_key)
}

module "hosts" {
  source = "../../modules/gpu_vm"

  project_id         = var.project_id
  environment        = var.environment
  name_prefix        = local.name
  placements         = var.placements
  subnetworks        = module.network.subnetworks
  machine_type       = var.machine_type
  gpu_type           = var.gpu_type
  gpu_count          = var.gpu_count
  image_project      = var.image_project
  image_name         = var.image_name
  boot_disk_size_gb  = var.boot_disk_size_gb
  assign_public_ip   = var.assign_public_ip
  enable_secure_boot = var.enable_secure_boot
  network_tags       = [local.host_tag]
  ssh_user           = var.ssh_user
  ssh_public_key     = var.ssh_public_key
  groups             = var.groups
  labels             = var.labels

  depends_on = [module.firewall, google_os_login_ssh_public_key.ansible]
}

module "contract" {
  source = "../../modules/host_contract"

  environment = var.environment
  hosts       = module.hosts.hosts
}
