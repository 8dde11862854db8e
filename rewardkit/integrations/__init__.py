"""Bridges to other training frameworks."""
