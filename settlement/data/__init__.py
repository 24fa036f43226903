"""Shipped sample data: a synthetic hourly temperature series for the demo (see sample_temperatures.py)."""
