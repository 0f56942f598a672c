"""Segments (contract §5): criteria trees over patients, compiled to SQL, previewed and explained."""
