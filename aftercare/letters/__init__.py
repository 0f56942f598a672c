"""Postal letters: the address block, the print-ready PDF and the daily print batches."""
