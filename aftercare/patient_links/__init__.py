"""The patients' own links in their messages: one-click unsubscribe, the preference centre, surveys."""
