"""The till's LAN service: a store's tills share what they redeemed while the backend is unreachable
(docs/sync.md, "Sharing over the shop's LAN"). A layer beside pos_app.sync: it uses the store and the core,
never the sync, and no Qt."""
