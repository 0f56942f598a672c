"""Campaigns: a message to every member of a segment, on a schedule, inside send windows, throttled."""
