"""Transitional Care Management (CPT 99495/99496): an episode per discharge, its deadlines and reports.

Business-day deadlines on the hospital's calendar, what happened in the episode, the worklist and the
compliance report."""
