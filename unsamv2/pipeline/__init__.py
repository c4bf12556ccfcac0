"""unsamv2.pipeline"""
