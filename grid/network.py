"""Network engine: pandapower power flow and sensitivities (no Django)."""
