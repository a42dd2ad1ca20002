"""The delivery side: the ledger, the landing waiter, and the one place that triggers."""
