"""`make soak`: a long mixed load while the policy is replaced (soak.py the driver, scenario.py the oracle)."""
