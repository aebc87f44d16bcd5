"""The pool services as the composition root builds them from settings and binds them to the hub."""

from __future__ import annotations

from pydantic import SecretStr

from communication_operator.contracts import ServerMethod
from communication_operator.metrics import OperatorMetrics
from communication_operator.pools import NoDeployedWorkloads, PoolRef
from communication_operator.runtime.pools import PoolServices, bind_to_hub, build_pool_services
from communication_operator.settings import Settings
from communication_operator.supervision import TaskSupervisor
from tests.unit.pools.doubles import FakeHub, FakeKube
from tests.unit.pools.test_registration import POOL_A, pool


def _build(settings: Settings, hub: FakeHub, kube: FakeKube, metrics: OperatorMetrics) -> PoolServices:
    return build_pool_services(
        settings,
        kube,
        hub,
        workloads=NoDeployedWorkloads(),
        max_message_bytes=32 * 1024,
        metrics=metrics,
        supervisor=TaskSupervisor(metrics),
    )


def test_edge_settings_build_no_provisioner() -> None:
    services = _build(Settings(auto_manage_pools=False), FakeHub(), FakeKube(), OperatorMetrics())
    assert services.provisioner is None
    assert services.registration.central is False
    assert services.registration.registry is services.registry


def test_central_settings_build_a_provisioner_with_the_broker_credentials() -> None:
    settings = Settings(
        auto_manage_pools=True, pool_namespace="octo", broker_user="octo", broker_password=SecretStr("pw")
    )
    services = _build(settings, FakeHub(), FakeKube(), OperatorMetrics())
    assert services.provisioner is not None
    assert services.provisioner.namespace == "octo"
    assert services.registration.central is True


async def test_built_and_bound_services_register_and_count_their_pools() -> None:
    hub, kube, metrics = FakeHub(), FakeKube(), OperatorMetrics()
    services = _build(Settings(auto_manage_pools=False), hub, kube, metrics)
    bind_to_hub(hub, services.registration)
    ref, spec = pool(kube, "a", "acme", POOL_A)
    await services.registration.ensure_registered(ref, spec)
    assert hub.calls_of(ServerMethod.REGISTER_POOL) == [("acme", POOL_A)]
    assert metrics.registry.get_sample_value("communication_operator_pools", {"phase": "Registered"}) == 1
    assert services.registry.key_of(PoolRef(ref.namespace, ref.name, ref.uid)) == spec.key
    await services.registration.stop()
    await services.status.close()
