"""The backend's storage: its schema and migrations, the group-commit writer, the verdict's questions in SQL.

Operations reach the database only through this package, so another database
(PostgreSQL, next) can sit beside SQLite without touching operations or routes.
"""
