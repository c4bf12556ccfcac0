"""Execution backends: run a stage in-process or on Ray (Ray Data actors, Ray Train, Ray Jobs).

This is the only package of the library that imports ``ray``, and only inside functions.
"""
