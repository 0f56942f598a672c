"""Activities: side effects, grouped by the system they touch (the store, messaging providers)."""
