"""Public pages for patients (no login): each opened by a signed, expiring, single-purpose link."""
