"""The optional local integration API (the `server` extra)."""
