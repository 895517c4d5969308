"""A handler module whose cold start fails, as one with a missing setting does."""

raise RuntimeError("SIGNING_KEY_ID is not set")
