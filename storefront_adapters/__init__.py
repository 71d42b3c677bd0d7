"""Storefront adapters: one module per store platform behind one interface."""
