"""Pika Till: the till that redeems Pika vouchers, online or offline."""

__version__ = "0.1.0"
