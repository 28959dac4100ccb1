"""podfleet.monitoring"""
