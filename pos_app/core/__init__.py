"""The rules of Pika vouchers, free of Qt and HTTP.

Both the till (`pos_app`) and the backend (`server_stub`) decide with this
package, so a code gets the same verdict wherever it is checked.
"""
