output "hosts" {
  description = "The hosts, in the output contract's shape (docs/output-contract.md)."
  value = [
    for name, c in lxd_container.host : {
      name        = name
      address     = local.hosts[name].address
      ssh_user    = var.ssh_user
      ssh_port    = 22
      groups      = var.groups
      gpu_type    = "none"
      gpu_count   = 0
      zone        = var.zone
      instance_id = "lxd:${name}:${c.mac_address}"
      connection  = "direct"
    }
  ]
}

output "profile" {
  description = "Name of the LXD profile holding the limits."
  value       = lxd_profile.host.name
}
