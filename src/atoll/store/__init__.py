"""The one database and the content-addressed artifact store: the registry layer."""
