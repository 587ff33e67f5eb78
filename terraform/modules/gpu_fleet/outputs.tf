output "instance_group" {
  description = "Self link of the regional managed instance group's instance group (a backend of the front door)."
  value       = google_compute_region_instance_group_manager.this.instance_group
}

output "instance_group_manager" {
  description = "Name of the regional managed instance group (gcloud compute instance-groups managed ... --region)."
  value       = google_compute_region_instance_group_manager.this.name
}

output "instance_template" {
  description = "Self link of the instance template the group runs."
  value       = google_compute_instance_template.this.self_link
}

output "autoscaler" {
  description = "Name of the regional autoscaler."
  value       = google_compute_region_autoscaler.this.name
}

output "hosts" {
  description = "The group's instances in the output contract's shape (docs/output-contract.md); empty with list_hosts = false."
  value = [
    for link, inst in data.google_compute_instance.member : {
      name        = inst.name
      address     = inst.network_interface[0].network_ip
      ssh_user    = var.ssh_user
      ssh_port    = 22
      groups      = var.groups
      gpu_type    = var.gpu_type
      gpu_count   = var.gpu_count
      zone        = inst.zone
      instance_id = inst.instance_id
      connection  = "iap"
    }
  ]
}
