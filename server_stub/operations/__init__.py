"""The backend's operations by resource: what each endpoint does, raising domain errors (errors.py).

One module per resource (admin, vouchers, tills, redemptions, voids, health,
reports); each function takes the process's `Context` first. They know no
HTTP: the web layer (app.py) checks a request's shape, calls one, and picks
the status. `server_stub.backend.Backend` gathers them behind one facade.
"""
