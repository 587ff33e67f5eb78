output "hosts" {
  description = "The hosts in the output contract's shape (docs/output-contract.md), in placement order."
  value = [
    for h in local.host_list : {
      name        = google_compute_instance.host[h.name].name
      address     = var.assign_public_ip ? try(google_compute_instance.host[h.name].network_interface[0].access_config[0].nat_ip, "") : google_compute_instance.host[h.name].network_interface[0].network_ip
      ssh_user    = var.ssh_user
      ssh_port    = 22
      groups      = var.groups
      gpu_type    = var.gpu_count > 0 ? var.gpu_type : "none"
      gpu_count   = var.gpu_count
      zone        = h.zone
      instance_id = google_compute_instance.host[h.name].instance_id
      connection  = var.assign_public_ip ? "direct" : "iap"
    }
  ]
}

output "instances" {
  description = "name => { id, zone, self_link, private_ip } of every instance."
  value = {
    for name, inst in google_compute_instance.host : name => {
      id         = inst.instance_id
      zone       = inst.zone
      self_link  = inst.self_link
      private_ip = inst.network_interface[0].network_ip
    }
  }
}

output "service_account_email" {
  description = "Email of the service account the hosts run as (an input: made once per project by the bootstrap root)."
  value       = var.service_account_email
}

output "network_tags" {
  description = "Network tags of every host (what the firewall rules target)."
  value       = var.network_tags
}
