"""Event management: events and sessions, registrations with a waitlist, offers, check-in, invites."""
