"""unsamv2.scenes"""
