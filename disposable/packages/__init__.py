"""What hosts install and where it comes from: locks, the package store, built artifacts."""
