"""Contracts shared by the executor and the workers: task keys, states, messages, pod naming.

Both sides import these modules and nothing else of each other, so a change to the wire format
or to how pods are named happens in exactly one place.
"""
