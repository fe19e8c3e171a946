"""The backend's operations by resource: what each endpoint does, raising domain errors (errors.py).

One module per resource (admin, vouchers, tills, redemptions, voids, health,
reports), beside who may call (credentials, staff_auth) and what they share
(context, common). Each function takes the process's `Context` first and
reaches the database only through its `Storage`. They know no HTTP: the web
layer (app.py) checks a request's shape, calls one, and picks the status.
`server_stub.backend.Backend` gathers them behind one facade.
"""
