"""Exercise podfleet's Kubernetes layer with whatever `kubernetes` package is importable.

Run by test_client_versions.py in a subprocess whose PYTHONPATH puts another client version
(36.x, the one Airflow's provider pins) in front of the virtualenv's. Prints one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import sys

import kubernetes
from kubernetes.client import V1Container, V1ObjectMeta, V1Pod, V1PodSpec

from podfleet.contracts.keys import TaskKey
from podfleet.contracts.messages import LaunchRequest, new_launch_id
from podfleet.kube.aio import AsyncKubeClient
from podfleet.kube.client import KubeClient
from podfleet.kube.errors import AlreadyExists
from podfleet.pods import validate_executor_config
from podfleet.pods.factory import PodFactory
from podfleet.settings import Settings


def main(kubeconfig: str) -> None:
    kube = KubeClient.from_config(kubeconfig=kubeconfig)
    override = V1Pod(metadata=V1ObjectMeta(labels={"team": "data"}),
                     spec=V1PodSpec(containers=[V1Container(name="base", image="busybox:1")]))
    config = validate_executor_config({"pod_override": override})
    settings = Settings.from_env({"PODFLEET_KUBECONFIG": kubeconfig})
    request = LaunchRequest(key=TaskKey("compat", "t", "r"), launch_id=new_launch_id(),
                            command=("echo", "hi"), executor_id="compat", namespace="default",
                            queued_at=0.0, executor_config=config)
    pod = PodFactory(settings).build(request)
    created = kube.create_pod("default", pod)
    name = created["metadata"]["name"]
    try:
        kube.create_pod("default", pod)
        duplicate = "created twice"
    except AlreadyExists as exc:
        duplicate = exc.reason
    aio = AsyncKubeClient.from_client(kube)
    second = dict(pod, metadata=dict(pod["metadata"], name=name + "-aio"))

    async def create_async() -> str:
        try:
            return str((await aio.create_pod("default", second))["metadata"]["name"])
        finally:
            await aio.close()

    async_name = asyncio.run(create_async())
    listed = kube.list_pods("default", label_selector="team=data")
    print(json.dumps({
        "version": kubernetes.__version__,
        "image": created["spec"]["containers"][0]["image"],
        "label": created["metadata"]["labels"].get("team"),
        "duplicate": duplicate,
        "async_name": async_name,
        "listed": sorted(p["metadata"]["name"] for p in listed.items),
        "deleted": kube.delete_pod("default", name, grace_period_seconds=0),
    }))


if __name__ == "__main__":
    main(sys.argv[1])
