"""The objects one running simulator is made of, handed to every part that needs them."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from podfleet.simulator.audit import AuthorizationAudit
from podfleet.simulator.stats import ApiStats
from podfleet.simulator.tokens import ServiceAccountTokens

if TYPE_CHECKING:
    from podfleet.simulator.config import SimulatorConfig
    from podfleet.simulator.eventstore import EventStore
    from podfleet.simulator.faults import FaultInjector
    from podfleet.simulator.store import ObjectStore


@dataclass
class SimulatorRuntime:
    """Config, store, counters and the cluster side's objects of one simulator."""

    config: SimulatorConfig
    store: ObjectStore
    loop: asyncio.AbstractEventLoop
    #: Event objects, in a store of their own (see eventstore.py).
    events: EventStore
    stats: ApiStats = field(default_factory=ApiStats)
    faults: FaultInjector | None = None
    cluster: Any = None
    #: ServiceAccount tokens minted through `serviceaccounts/{name}/token`.
    tokens: ServiceAccountTokens = field(default_factory=ServiceAccountTokens)
    #: RBAC decisions taken for ServiceAccount tokens.
    audit: AuthorizationAudit = field(default_factory=AuthorizationAudit)
