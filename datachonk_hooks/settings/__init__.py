"""Settings: datachonk.yaml, the environment, flags, and the API token."""
