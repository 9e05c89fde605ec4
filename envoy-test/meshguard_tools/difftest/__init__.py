"""`make difftest`: meshguard vs Envoy native RBAC on random policies and requests (difftest.py, generate.py)."""
