"""The till's talk with the backend: the HTTP client, online-first redemption, one sync round, the background engine (docs/sync.md)."""
