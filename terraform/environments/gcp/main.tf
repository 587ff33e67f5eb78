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

  # Made once per project by terraform/bootstrap/gcs_state (module host_identity).
  service_account_email = var.host_service_account_email

  depends_on = [module.firewall, google_os_login_ssh_public_key.ansible]
}

# The hosts' service account and its role bindings used to be created here, on every
# nightly apply; they now belong to the bootstrap root. Forget them without deleting them
# (the bootstrap root adopts the account: terraform/bootstrap/gcs_state/README.md).
removed {
  from = module.hosts.google_service_account.vm

  lifecycle {
    destroy = false
  }
}

removed {
  from = module.hosts.google_project_iam_member.vm

  lifecycle {
    destroy = false
  }
}

module "contract" {
  source = "../../modules/host_contract"

  environment = var.environment
  hosts       = module.hosts.hosts
}
