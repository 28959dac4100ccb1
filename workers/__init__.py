"""podfleet.workers"""
