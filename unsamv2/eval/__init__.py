"""unsamv2.eval"""
