"""Services podfleet starts for itself on one machine: the demo's private Redis, free ports.

The demo ("nothing configured") and the test suite both need a Redis they own, so they can
start, kill and restart it without touching anyone else's.
"""
