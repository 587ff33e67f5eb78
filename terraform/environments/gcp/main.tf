# Production: GCE hosts with NVIDIA T4 GPUs in a private VPC. Same output contract as local.
locals {
  name = "dml-${var.environment}"
  # The firewall rules find the hosts by this network tag.
  host_tag = "dml-${var.environment}-inference"

  host_member = "serviceAccount:${var.host_service_account_email}"
  # The gpu_vm defaults (logging, monitoring) plus read-only Cloud Storage for the model
  # store; IAM still limits the account to that one bucket (objectViewer).
  host_scopes = concat(
    ["https://www.googleapis.com/auth/logging.write", "https://www.googleapis.com/auth/monitoring.write"],
    var.model_store_enabled ? ["https://www.googleapis.com/auth/devstorage.read_only"] : [],
  )
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

  service_account_scopes = local.host_scopes

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

# State outside the hosts (docs/gcp.md, "State outside the hosts"): the online feature
# store (Memorystore for Redis over private service access, AUTH + TLS, the AUTH string in
# Secret Manager for the hosts' account only) and the versioned model bucket. They live in
# this root: `terraform destroy` / `invoke destroy --env gcp` DELETES the feature store
# and its snapshots; the bucket refuses while it holds models (model_store_force_destroy).
module "feature_store" {
  source = "../../modules/feature_store"
  count  = var.feature_store_enabled ? 1 : 0

  project_id            = var.project_id
  environment           = var.environment
  name                  = "${local.name}-features"
  region                = var.region
  zone                  = var.feature_store_zone
  network               = module.network.network_id
  psa_cidr              = var.feature_store_psa_cidr
  tier                  = var.feature_store_tier
  memory_size_gb        = var.feature_store_memory_size_gb
  redis_version         = var.feature_store_redis_version
  rdb_snapshot_period   = var.feature_store_rdb_snapshot_period
  auth_secret_accessors = concat([local.host_member], var.feature_store_auth_readers)
  labels                = var.labels
}

module "model_store" {
  source = "../../modules/model_store"
  count  = var.model_store_enabled ? 1 : 0

  project_id                  = var.project_id
  environment                 = var.environment
  name                        = "${var.project_id}-${local.name}-models"
  location                    = var.region
  reader_members              = [local.host_member]
  writer_members              = var.model_store_writers
  noncurrent_versions_to_keep = var.model_store_noncurrent_versions
  force_destroy               = var.model_store_force_destroy
  labels                      = var.labels
}

module "contract" {
  source = "../../modules/host_contract"

  environment = var.environment
  hosts       = module.hosts.hosts
}
