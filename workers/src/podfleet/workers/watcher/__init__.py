"""The singleton pod watcher: pod phases in, task events out, finished pods deleted.

* ``phases``    - pure mapping from pod JSON (and what was published before) to task events.
* ``lease``     - the Redis lease with a fencing token that makes the watcher a singleton.
* ``publisher`` - the fenced Lua write of events + per-pod records + resourceVersion.
* ``loop``      - list, reconcile, watch with bookmarks, relist on 410, reconnect with backoff.
* ``deleter``   - one delete per finished pod, per policy, rate-limited, after its event.
* ``actor``     - the dramatiq actor and the per-process supervisor that keep one running.
"""
