"""unsamv2.backends"""
