"""MongoDB storage. Every collection's indexes are declared here, led by ``userId``."""
