"""Prefect tasks: thin adapters over the ``unsamv2`` library that pass URIs, ids and counts."""
