"""Adaptive authentication: named policies of IP rules and device limits that an app
selects, and the decision they give for a sign-in (allow, challenge or deny)."""
