"""`make bench`: meshguard vs Envoy native RBAC / jwt_authn vs no filter (README.md here; bench.py is the driver)."""
