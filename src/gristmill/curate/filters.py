"""Placeholder: the steps of this module are being written."""
