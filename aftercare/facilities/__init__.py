"""Facilities: the hospital group's tree, where each patient belongs, and scoped access."""
