"""unsamv2.train"""
