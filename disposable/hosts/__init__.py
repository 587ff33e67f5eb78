"""From Terraform's outputs to configured hosts: the output contract, inventory, SSH, Ansible, health."""
