# Production at scale: an autoscaled, auto-healed fleet of T4 hosts from the baked image,
# one regional managed instance group per region, behind one global external Application
# Load Balancer. Same modules and output contract as the gcp root; the hosts come from the
# groups, and `front_door` says where the service is reached. docs/gcp.md, "Fleet".
locals {
  name     = "dml-${var.environment}"
  host_tag = "dml-${var.environment}-inference"

  image_project = var.image_project != "" ? var.image_project : var.project_id

  host_member = "serviceAccount:${var.host_service_account_email}"
  # The gpu_fleet defaults (logging, monitoring) plus read-only Cloud Storage for the model
  # store; IAM still limits the account to that one bucket (objectViewer).
  host_scopes = concat(
    ["https://www.googleapis.com/auth/logging.write", "https://www.googleapis.com/auth/monitoring.write"],
    var.model_store_enabled ? ["https://www.googleapis.com/auth/devstorage.read_only"] : [],
  )
  # One feature store for the whole fleet, in one of its regions (the first by name unless
  # feature_store_region says otherwise); the other regions reach it across the VPC.
  state_region = var.feature_store_region != "" ? var.feature_store_region : sort(keys(var.regions))[0]
}

# The bake publishes into a family (invoke bake --env gcp, docs/gcp.md); the template pins
# the family's newest image BY NAME, so a new bake is a visible plan change (new template,
# rolling update), never a silent difference between hosts created before and after it.
data "google_compute_image" "serving" {
  project = local.image_project
  family  = var.image_name == "" ? var.image_family : null
  name    = var.image_name == "" ? null : var.image_name
}

module "network" {
  source = "../../modules/network"

  project_id = var.project_id
  name       = local.name
  subnets    = var.subnets
}

# The service port only from Google's load balancer / health-check ranges (the module
# always admits 35.191.0.0/16 and 130.211.0.0/22; api_source_ranges adds none), SSH only
# from IAP.
module "firewall" {
  source = "../../modules/firewall"

  project_id        = var.project_id
  name_prefix       = local.name
  network           = module.network.network_self_link
  target_tags       = [local.host_tag]
  api_port          = var.service_port
  api_source_ranges = []
}

module "region" {
  source   = "../../modules/gpu_fleet"
  for_each = var.regions

  project_id            = var.project_id
  environment           = var.environment
  region                = each.key
  zones                 = each.value
  name_prefix           = local.name
  subnetwork            = module.network.subnetworks[each.key]
  network_tags          = [local.host_tag]
  service_account_email = var.host_service_account_email
  machine_type          = var.machine_type
  gpu_type              = var.gpu_type
  gpu_count             = var.gpu_count
  source_image          = "projects/${local.image_project}/global/images/${data.google_compute_image.serving.name}"
  boot_disk_size_gb     = var.boot_disk_size_gb
  enable_secure_boot    = var.enable_secure_boot
  service_config        = var.service_config
  labels                = var.labels
  service_port          = var.service_port

  boot_to_ready_seconds         = var.boot_to_ready_seconds
  autohealing_initial_delay_sec = var.autohealing_initial_delay_sec
  cooldown_period_sec           = var.cooldown_period_sec
  min_replicas                  = var.min_replicas
  max_replicas                  = var.max_replicas
  lb_utilization_target         = var.lb_utilization_target
  scaling_schedules             = var.scaling_schedules
  max_surge_fixed               = var.max_surge_fixed
  min_ready_sec                 = var.min_ready_sec
  ssh_user                      = var.ssh_user
  service_account_scopes        = local.host_scopes

  depends_on = [module.firewall]
}

module "front_door" {
  source = "../../modules/front_door"

  project_id            = var.project_id
  name                  = local.name
  backends              = { for region, fleet in module.region : region => fleet.instance_group }
  max_rate_per_instance = var.max_rate_per_instance
  domains               = var.domains
  security_policy       = var.security_policy
}

# State outside the hosts (docs/gcp.md, "State outside the hosts"): the online feature
# store (Memorystore for Redis over private service access, AUTH + TLS, the AUTH string in
# Secret Manager for the hosts' account only) and the versioned model bucket. They live in
# this root: `terraform destroy` of the fleet DELETES the feature store and its snapshots;
# the bucket refuses while it holds models (model_store_force_destroy). A rolling bake or a
# scale change never touches them.
module "feature_store" {
  source = "../../modules/feature_store"
  count  = var.feature_store_enabled ? 1 : 0

  project_id            = var.project_id
  environment           = var.environment
  name                  = "${local.name}-features"
  region                = local.state_region
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
  location                    = var.model_store_location != "" ? var.model_store_location : local.state_region
  reader_members              = [local.host_member]
  writer_members              = var.model_store_writers
  noncurrent_versions_to_keep = var.model_store_noncurrent_versions
  force_destroy               = var.model_store_force_destroy
  labels                      = var.labels
}

module "contract" {
  source = "../../modules/host_contract"

  environment = var.environment
  hosts       = flatten([for region in sort(keys(var.regions)) : module.region[region].hosts])
}
