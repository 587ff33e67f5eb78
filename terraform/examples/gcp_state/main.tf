# State outside the hosts, alone: a private VPC, the online feature store (Memorystore for
# Redis, BASIC 1 GiB, private service access, AUTH + TLS, the AUTH string in Secret
# Manager) and a versioned model bucket, with local state. Costs money while it exists
# (about 0.05 USD/hour for the 1 GiB BASIC instance in us-central1, plus the bucket's
# storage): destroy it when done. Needs the redis, servicenetworking and secretmanager APIs.
#
#   terraform init
#   terraform apply -var project_id=my-dml-project -var reader=serviceAccount:dml-gcp-vm@my-dml-project.iam.gserviceaccount.com
#   gcloud secrets versions access latest --secret=$(terraform output -raw auth_secret) --project my-dml-project
#   terraform destroy -var project_id=my-dml-project -var reader=...   # the bucket must be empty (force_destroy = false)
terraform {
  required_version = ">= 1.9.0"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.0"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = "us-central1"
}

variable "project_id" {
  description = "GCP project to create the example in."
  type        = string
}

variable "reader" {
  description = "IAM member that reads the AUTH secret and the models, e.g. serviceAccount:dml-gcp-vm@PROJECT.iam.gserviceaccount.com."
  type        = string
}

module "network" {
  source = "../../modules/network"

  project_id = var.project_id
  name       = "dml-state-example"
  subnets    = { us-central1 = "10.63.0.0/24" }
}

module "feature_store" {
  source = "../../modules/feature_store"

  project_id            = var.project_id
  environment           = "example"
  name                  = "dml-state-example-features"
  region                = "us-central1"
  network               = module.network.network_id
  psa_cidr              = "10.63.16.0/24"
  auth_secret_accessors = [var.reader]
}

module "model_store" {
  source = "../../modules/model_store"

  project_id     = var.project_id
  environment    = "example"
  name           = "${var.project_id}-dml-state-example-models"
  location       = "us-central1"
  reader_members = [var.reader]
}

output "feature_store" {
  description = "The feature store in the output contract's shape: address, port, url, tls."
  value       = module.feature_store.contract
}

output "auth_secret" {
  description = "Secret Manager secret holding the AUTH string."
  value       = module.feature_store.auth_secret_id
}

output "model_store_url" {
  description = "gs://<bucket> of the model store."
  value       = module.model_store.model_store_url
}
