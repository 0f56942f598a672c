"""Transitional Care Management (CPT 99495/99496): an episode per discharge with business-day deadlines
on the hospital's calendar, what happened in it, the worklist and the compliance report."""
