output "email" {
  description = "Email of the service account (the environments' host_service_account_email)."
  value       = google_service_account.this.email
}

output "name" {
  description = "Resource name of the account (projects/<p>/serviceAccounts/<email>)."
  value       = google_service_account.this.name
}

output "roles" {
  description = "Project roles granted to the account."
  value       = sort(keys(google_project_iam_member.roles))
}
