# This file is maintained automatically by "terraform init".
# Manual edits may be lost in future updates.

provider "registry.terraform.io/terraform-lxd/lxd" {
  version     = "1.5.0"
  constraints = "1.5.0"
  hashes = [
    "h1:AJH12D4uELiClB6i7skLQAImbOVsvRSbVIxaTMRt4Ws=",
  ]
}
