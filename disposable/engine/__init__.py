"""Terraform: which engine runs, how it is run, its variables and its offline provider mirror."""
