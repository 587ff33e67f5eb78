# The output contract, enforced by Terraform's type system and the validations in
# variables.tf. Every environment passes its hosts through this module, so inventory,
# roles and tests never see an environment-specific shape. See docs/output-contract.md.
locals {
  contract_version = 1
}
