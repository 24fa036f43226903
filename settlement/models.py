"""Meter data, baselines, delivery verification, settlement statements and invoices."""
