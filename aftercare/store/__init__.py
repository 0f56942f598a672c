"""Database reads and writes, one module per kind of row.

Functions take a session; the caller owns the transaction."""
