"""Thin widgets over the session controller and the store's records."""
