"""Prefect flows: the deployable entry points (see prefect.yaml)."""
