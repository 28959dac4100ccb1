"""The simulator's API-server half: HTTP routing, the generic verbs, and one module per kind.

`handler.py` is the entry point (`build_api_app`); `registry.py` lists the served kinds;
`kind.py` is what a kind module declares. The cluster half (scheduler, kubelet) is
`podfleet.simulator.cluster`; both work on the stores in `podfleet.simulator.store`.
"""
