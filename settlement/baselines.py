"""Baseline methods: pure functions of numpy arrays (no Django)."""
