"""Small kubernetes-asyncio helpers: client setup and the few object operations the operator needs."""

from communication_operator.kube.client import KubeClient, connection_info, kopf_session, load_configuration
from communication_operator.kube.objects import EventType, KubeObjects, ObjectRef

__all__ = [
    "EventType",
    "KubeClient",
    "KubeObjects",
    "ObjectRef",
    "connection_info",
    "kopf_session",
    "load_configuration",
]
