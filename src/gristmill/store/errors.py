"""Errors the store raises with a message meant for the person at the terminal."""


class StoreError(Exception):
    pass
