"""A fake kubelet (and scheduler) for the local control plane, which has neither.

It watches pods and writes what kube-scheduler and a kubelet would: a Binding to the fake node, the
pod status (Running/Ready, or ImagePullBackOff, CrashLoopBackOff, ... per image rules) and core/v1
Events with the fields real ones carry. Deleted pods bound to the node are finalised (grace 0), as a
kubelet does once the containers are gone.

In-process use (tests)::

    async with FakeKubelet(api_client, namespace="t-1") as kubelet:
        kubelet.add_rule("example.invalid/*", "image-pull-backoff")

CLI: ``devcluster kubelet [--rules FILE] [--configmap NS/NAME]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp
from kubernetes_asyncio import client, config, watch
from kubernetes_asyncio.client.rest import ApiException

from octo_devtools.devcluster.podplan import (
    KUBELET,
    SCHEDULER,
    EventSpec,
    NodeInfo,
    PodPlanner,
    Step,
    rfc3339,
)
from octo_devtools.devcluster.rules import Behaviour, Rule, RuleError, make_rule, parse_rules_text

logger = logging.getLogger(__name__)
# The events.k8s.io ``action`` kube-scheduler gives its events.
SCHEDULER_ACTIONS = {"Scheduled": "Binding", "FailedScheduling": "Scheduling"}


def micro_time(moment: datetime) -> str:
    """A MicroTime as the apiserver serialises it: RFC 3339 with microseconds, UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


MERGE_PATCH = "application/merge-patch+json"
WATCH_TIMEOUT_S = 240  # server-side; the watch is re-opened from the last resourceVersion
RETRY_DELAY_S = 1.0
RULE_KEYS = ("rules.yaml", "rules.yml", "rules.json", "rules")


class FakeKubelet:
    """Watches pods (one namespace or all) and plays kubelet + scheduler for them."""

    def __init__(
        self,
        api_client: client.ApiClient,
        *,
        namespace: str | None = None,
        node: NodeInfo | None = None,
        rules: Iterable[Rule] = (),
        configmap: tuple[str, str] | None = None,
        owns_client: bool = False,
    ) -> None:
        self.api_client = api_client
        # Typed as Any: the generated stubs take model objects only and lack `_content_type`, while we
        # send plain dicts and need merge-patch (the default JSON-patch content type would be wrong).
        self.core: Any = client.CoreV1Api(api_client)
        self.namespace = namespace
        self.node = node or NodeInfo()
        self.configmap = configmap
        self._rules: list[Rule] = list(rules)
        self._configmap_rules: list[Rule] = []
        self.configmap_generation = 0  # bumped on every applied ConfigMap change (tests wait on it)
        self._configmap_version: str | None = None  # resourceVersion of the ConfigMap last applied
        self._owns_client = owns_client
        self._tasks: list[asyncio.Task[None]] = []
        self._pods: dict[str, asyncio.Task[None]] = {}
        self._terminating: set[str] = set()
        self._ip_counter = itertools.count(2)
        self._event_seq = itertools.count()
        self._events: dict[tuple[Any, ...], tuple[str, int]] = {}
        self._synced = asyncio.Event()

    @classmethod
    async def from_kubeconfig(cls, kubeconfig: Path, **kwargs: Any) -> FakeKubelet:
        configuration = client.Configuration()
        await config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
        return cls(client.ApiClient(configuration), owns_client=True, **kwargs)

    # -- rules -----------------------------------------------------------------------------------

    @property
    def rules(self) -> list[Rule]:
        """Rules in match order: those added from Python/file first, then the ConfigMap's."""
        return [*self._rules, *self._configmap_rules]

    def add_rule(self, image_glob: str, behaviour: str | Behaviour, **params: Any) -> Rule:
        """Add a rule for pods created from now on (see `rules.make_rule`)."""
        rule = make_rule(image_glob, behaviour, **params)
        self._rules.append(rule)
        return rule

    def set_rules(self, rules: Iterable[Rule]) -> None:
        self._rules = list(rules)

    def clear_rules(self) -> None:
        self._rules = []

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.register_node()
        if self.configmap is not None:
            await self._load_configmap_once()
            self._tasks.append(asyncio.create_task(self._watch_configmap(), name="fake-kubelet-configmap"))
        self._tasks.append(asyncio.create_task(self._watch_pods(), name="fake-kubelet-pods"))
        logger.info(
            "fake kubelet started on node %s for %s",
            self.node.name,
            f"namespace {self.namespace}" if self.namespace else "all namespaces",
        )

    async def wait_synced(self, timeout: float = 10.0) -> None:
        """Wait until the pod watch is open (pods created earlier are then being handled)."""
        await asyncio.wait_for(self._synced.wait(), timeout)

    async def stop(self) -> None:
        tasks = [*self._tasks, *self._pods.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._pods.clear()
        if self._owns_client:
            await self.api_client.close()

    async def __aenter__(self) -> FakeKubelet:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def run_forever(self) -> None:
        await self.start()
        try:
            await asyncio.gather(*self._tasks)
        finally:
            await self.stop()

    # -- node ------------------------------------------------------------------------------------

    async def register_node(self) -> None:
        """Create the node object (shared by every fake kubelet) and mark it Ready."""
        name = self.node.name
        body = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "labels": {
                    "kubernetes.io/hostname": name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "node-role.kubernetes.io/control-plane": "",
                },
            },
        }
        try:
            await self.core.create_node(body)
        except ApiException as error:
            if error.status != 409:
                raise
        now = rfc3339(datetime.now(UTC))
        capacity = {"cpu": "4", "memory": "8Gi", "pods": "110", "ephemeral-storage": "100Gi"}

        def condition(kind: str, status: str, reason: str, message: str) -> dict[str, str]:
            return {
                "type": kind,
                "status": status,
                "reason": reason,
                "message": message,
                "lastHeartbeatTime": now,
                "lastTransitionTime": now,
            }

        status = {
            "capacity": capacity,
            "allocatable": capacity,
            "conditions": [
                condition(
                    "MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory"
                ),
                condition(
                    "DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"
                ),
                condition(
                    "PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"
                ),
                condition(
                    "Ready", "True", "KubeletReady", "kubelet is posting ready status (devcluster fake)"
                ),
            ],
            "addresses": [
                {"type": "InternalIP", "address": self.node.host_ip},
                {"type": "Hostname", "address": name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": "devcluster",
                "systemUUID": "devcluster",
                "bootID": "devcluster",
                "kernelVersion": "6.1.0",
                "osImage": "devcluster fake kubelet",
                "containerRuntimeVersion": "containerd://1.7.0",
                "kubeletVersion": "v1.20.2",
                "kubeProxyVersion": "v1.20.2",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        }
        await self.core.patch_node_status(name, {"status": status}, _content_type=MERGE_PATCH)

    # -- pods ------------------------------------------------------------------------------------

    async def _watch_pods(self) -> None:
        resource_version: str | None = None
        while True:
            kwargs: dict[str, Any] = {"timeout_seconds": WATCH_TIMEOUT_S}
            if resource_version:
                kwargs["resource_version"] = resource_version
            args: tuple[str, ...] = (self.namespace,) if self.namespace else ()
            func = self.core.list_namespaced_pod if self.namespace else self.core.list_pod_for_all_namespaces
            try:
                async with watch.Watch(return_type="object").stream(func, *args, **kwargs) as stream:
                    self._synced.set()
                    async for event in stream:
                        pod = event["raw_object"]
                        resource_version = pod.get("metadata", {}).get("resourceVersion", resource_version)
                        self._on_pod_event(event["type"], pod)
            except ApiException as error:
                if error.status == 410:  # our resourceVersion is too old: start over from a fresh list
                    resource_version = None
                    continue
                logger.warning("fake kubelet: pod watch failed (%s %s); retrying", error.status, error.reason)
                await asyncio.sleep(RETRY_DELAY_S)
            except (aiohttp.ClientError, TimeoutError) as error:
                logger.warning("fake kubelet: pod watch connection failed (%s); retrying", error)
                await asyncio.sleep(RETRY_DELAY_S)

    def _on_pod_event(self, kind: str, pod: dict[str, Any]) -> None:
        metadata = pod.get("metadata", {})
        uid = metadata.get("uid", "")
        if kind == "DELETED":
            task = self._pods.pop(uid, None)
            if task is not None:
                task.cancel()
            self._terminating.discard(uid)
            return
        if kind not in ("ADDED", "MODIFIED"):
            return
        node_name = pod.get("spec", {}).get("nodeName")
        if node_name and node_name != self.node.name:
            return  # another (real or fake) node's pod
        if metadata.get("deletionTimestamp"):
            if node_name and uid not in self._terminating:
                self._terminating.add(uid)
                task = self._pods.pop(uid, None)
                if task is not None:
                    task.cancel()
                self._pods[uid] = asyncio.create_task(self._terminate(pod))
            return
        if uid in self._pods:
            return
        if node_name and pod.get("status", {}).get("containerStatuses"):
            # Handled by an earlier fake kubelet run; leave its state alone.
            self._pods[uid] = asyncio.create_task(asyncio.sleep(0))
            return
        planner = PodPlanner(pod, self.rules, self.node, self._next_pod_ip())
        self._pods[uid] = asyncio.create_task(self._run_plan(pod, planner), name=f"fake-kubelet-{uid}")

    def _next_pod_ip(self) -> str:
        n = next(self._ip_counter)
        return f"10.244.{(n // 254) % 256}.{n % 254 + 1}"

    async def _run_plan(self, pod: dict[str, Any], planner: PodPlanner) -> None:
        name, namespace = planner.name, planner.namespace
        bound = bool(pod.get("spec", {}).get("nodeName"))
        try:
            for step in planner.steps():
                if step.after:
                    await asyncio.sleep(step.after)
                if step.bind and not bound:
                    await self._bind(name, namespace)
                    bound = True
                await self._apply(pod, step)
        except asyncio.CancelledError:
            raise
        except ApiException as error:
            if error.status in (404, 409):  # the pod went away (or was replaced) meanwhile
                logger.debug("fake kubelet: pod %s/%s gone: %s", namespace, name, error.reason)
                return
            logger.exception("fake kubelet: failed to update pod %s/%s", namespace, name)
        except Exception:
            logger.exception("fake kubelet: failed to update pod %s/%s", namespace, name)

    async def _bind(self, name: str, namespace: str) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name, "namespace": namespace},
            "target": {"apiVersion": "v1", "kind": "Node", "name": self.node.name},
        }
        # The server answers with a Status, which the generated V1Binding model cannot hold.
        response = await self.core.create_namespaced_pod_binding(
            name, namespace, body, _preload_content=False
        )
        await response.read()

    async def _apply(self, pod: dict[str, Any], step: Step) -> None:
        metadata = pod["metadata"]
        if step.status is not None:
            await self.core.patch_namespaced_pod_status(
                metadata["name"], metadata["namespace"], {"status": step.status}, _content_type=MERGE_PATCH
            )
        for event in step.events:
            await self.record_event(pod, event)

    async def _terminate(self, pod: dict[str, Any]) -> None:
        metadata = pod["metadata"]
        name, namespace = metadata["name"], metadata["namespace"]
        try:
            for container in pod.get("spec", {}).get("containers", []):
                await self.record_event(
                    pod,
                    EventSpec(
                        "Normal",
                        "Killing",
                        f"Stopping container {container['name']}",
                        container=container["name"],
                    ),
                )
            await self.core.delete_namespaced_pod(
                name,
                namespace,
                body={"gracePeriodSeconds": 0, "preconditions": {"uid": metadata["uid"]}},
                grace_period_seconds=0,
            )
        except ApiException as error:
            if error.status not in (404, 409):
                logger.exception("fake kubelet: failed to finalise deletion of %s/%s", namespace, name)

    # -- events ----------------------------------------------------------------------------------

    async def record_event(self, pod: dict[str, Any], spec: EventSpec) -> None:
        """Create the Event, or bump count/lastTimestamp of an identical one (like client-go does)."""
        metadata = pod["metadata"]
        namespace = metadata["namespace"]
        now = rfc3339(datetime.now(UTC))
        key = (metadata["uid"], spec.field_path, spec.type, spec.reason, spec.message, spec.component)
        seen = self._events.get(key)
        scheduler = spec.component == SCHEDULER
        if seen is not None:
            name, count = seen
            self._events[key] = (name, count + 1)
            repeat: dict[str, Any] = (
                {"series": {"count": count + 1, "lastObservedTime": micro_time(datetime.now(UTC))}}
                if scheduler
                else {"count": count + 1, "lastTimestamp": now}
            )
            with contextlib.suppress(ApiException):
                await self.core.patch_namespaced_event(name, namespace, repeat, _content_type=MERGE_PATCH)
                return
        involved: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "name": metadata["name"],
            "namespace": namespace,
            "uid": metadata["uid"],
            "resourceVersion": metadata.get("resourceVersion"),
        }
        if spec.field_path:
            involved["fieldPath"] = spec.field_path
        source: dict[str, str] = {"component": spec.component}
        if spec.component == KUBELET:
            source["host"] = self.node.name
        name = f"{metadata['name']}.{time.time_ns() + next(self._event_seq):x}"
        if scheduler:
            body = self._scheduler_event(name, namespace, involved, spec)
            await self.core.create_namespaced_event(namespace, body)
            self._events[key] = (name, 1)
            return
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": involved,
            "reason": spec.reason,
            "message": spec.message,
            "type": spec.type,
            "source": source,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "reportingComponent": spec.component,
            "reportingInstance": self.node.name if spec.component == KUBELET else f"{SCHEDULER}-devcluster",
        }
        await self.core.create_namespaced_event(namespace, body)
        self._events[key] = (name, 1)

    @staticmethod
    def _scheduler_event(
        name: str, namespace: str, involved: dict[str, Any], spec: EventSpec
    ) -> dict[str, Any]:
        """kube-scheduler 1.20 records through the events.k8s.io API: seen as a core Event it has no
        source, count or first/last timestamps, but an eventTime, an action, the reporting
        controller and instance, and repeats as a ``series`` (what the real scheduler writes)."""
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": involved,
            "reason": spec.reason,
            "message": spec.message,
            "type": spec.type,
            "eventTime": micro_time(datetime.now(UTC)),
            "action": SCHEDULER_ACTIONS.get(spec.reason, "Scheduling"),
            "reportingComponent": SCHEDULER,
            "reportingInstance": f"{SCHEDULER}-devcluster",
        }

    # -- rules from a ConfigMap ------------------------------------------------------------------

    async def _load_configmap_once(self) -> None:
        assert self.configmap is not None
        namespace, name = self.configmap
        try:
            configmap = await self.core.read_namespaced_config_map(name, namespace, _preload_content=False)
            self._apply_configmap(await configmap.json())
        except ApiException as error:
            if error.status != 404:
                raise
            logger.info("fake kubelet: ConfigMap %s/%s does not exist yet; no rules from it", namespace, name)

    async def _watch_configmap(self) -> None:
        assert self.configmap is not None
        namespace, name = self.configmap
        while True:
            try:
                async with watch.Watch(return_type="object").stream(
                    self.core.list_namespaced_config_map,
                    namespace,
                    field_selector=f"metadata.name={name}",
                    timeout_seconds=WATCH_TIMEOUT_S,
                ) as stream:
                    async for event in stream:
                        if event["type"] == "DELETED":
                            self._configmap_rules = []
                            self.configmap_generation += 1
                            logger.info(
                                "fake kubelet: ConfigMap %s/%s deleted; its rules dropped", namespace, name
                            )
                        elif event["type"] in ("ADDED", "MODIFIED"):
                            self._apply_configmap(event["raw_object"])
            except ApiException as error:
                logger.warning("fake kubelet: ConfigMap watch failed (%s); retrying", error.status)
                await asyncio.sleep(RETRY_DELAY_S)
            except (aiohttp.ClientError, TimeoutError) as error:
                logger.warning("fake kubelet: ConfigMap watch connection failed (%s); retrying", error)
                await asyncio.sleep(RETRY_DELAY_S)

    def _apply_configmap(self, configmap: dict[str, Any]) -> None:
        data = configmap.get("data") or {}
        metadata = configmap.get("metadata", {})
        version = metadata.get("resourceVersion")
        if version is not None and version == self._configmap_version:
            # The watch opens with an ADDED of the object the initial read already applied: not a change.
            return
        self._configmap_version = version
        source = f"ConfigMap {metadata.get('namespace')}/{metadata.get('name')}"
        key = next((k for k in RULE_KEYS if k in data), None)
        if key is None:
            logger.error(
                "fake kubelet: %s has none of the keys %s; keeping the previous rules", source, RULE_KEYS
            )
            return
        try:
            rules = parse_rules_text(data[key], source=f"{source} key {key}")
        except RuleError as error:
            logger.error("fake kubelet: %s; keeping the previous rules", error)
            return
        self._configmap_rules = rules
        self.configmap_generation += 1
        logger.info("fake kubelet: %d rule(s) loaded from %s", len(rules), source)
