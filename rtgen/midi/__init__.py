"""midi"""
