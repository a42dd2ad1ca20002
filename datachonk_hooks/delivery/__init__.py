"""The delivery side: planning a trigger, the ledger that records it, the landing waiter that
sends it once its push landed, and `datachonk push` delivering in the foreground."""
