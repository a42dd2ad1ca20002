"""The push side: what a push carries, which of its files are generated models, and the cause."""
