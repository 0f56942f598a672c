"""`aftercare dev`: the whole stack in the foreground from one command."""
