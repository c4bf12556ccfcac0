"""unsamv2.viz"""
