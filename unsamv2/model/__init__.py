"""unsamv2.model"""
