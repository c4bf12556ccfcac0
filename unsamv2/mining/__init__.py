"""unsamv2.mining"""
