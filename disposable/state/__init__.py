"""State that lives outside the disposable hosts: the online feature store's producer and
data volume, and the versioned model store."""
