"""podfleet.simulator"""
