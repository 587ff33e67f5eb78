# Once per project, next to the state bucket: the service account each environment's GPU
# hosts run as (dml-<environment>-vm@) and its roles. The environment roots only take its
# email (host_service_account_email), so no nightly apply creates or deletes accounts or
# grants project roles (terraform/modules/host_identity/README.md says why).
module "host_identity" {
  source   = "../../modules/host_identity"
  for_each = toset(var.host_environments)

  project_id   = var.project_id
  account_id   = "dml-${each.key}-vm"
  display_name = "disposable-ml ${each.key} GPU hosts"
  deployers    = var.deployers
}
