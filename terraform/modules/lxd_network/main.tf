resource "lxd_network" "this" {
  name        = var.name
  description = var.description

  config = {
    "ipv4.address" = "${cidrhost(var.cidr, 1)}/${split("/", var.cidr)[1]}"
    "ipv4.nat"     = tostring(var.nat)
    "ipv6.address" = "none"
  }
}
