"""``communication-operator check``: can this operator work here? A pass/fail table, exit 1 on failure.

It checks what the operator needs at run time, in the order a platform engineer would debug it:
settings, the controller (token, negotiate and handshake), the Kubernetes API, the CRDs (CommunicationPool
and DeploymentSite: the operator serves both), the RBAC permissions (``SelfSubjectAccessReview``), and helm.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from kubernetes_asyncio import client

from communication_operator.hub.session import HubSession, SessionConfig
from communication_operator.kube import KubeClient
from communication_operator.pools import GROUP, PLURAL
from communication_operator.pools.kinds import KINDS
from communication_operator.redaction import redact_url_tokens
from communication_operator.settings import ConfigurationError, Settings, load_settings
from communication_operator.workloads.helm import HelmCli

CRD_NAME = f"{PLURAL}.{GROUP}"
CHECK_TIMEOUT = 20.0


@dataclass(frozen=True)
class Permission:
    verb: str
    resource: str
    group: str = ""
    subresource: str = ""
    namespace_scoped: bool = True

    def describe(self) -> str:
        resource = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        return f"{self.verb} {resource}{'.' + self.group if self.group else ''}"


def required_permissions(settings: Settings) -> list[tuple[Permission, str]]:
    """(permission, namespace or "" for cluster-wide) the operator uses in ``settings``' mode."""
    watch = settings.watch_namespace
    pools = settings.pool_namespace
    needed = [
        (Permission(verb, kind.plural, kind.group), watch)
        for kind in KINDS
        for verb in ("get", "list", "watch", "patch")
    ] + [(Permission("patch", kind.plural, kind.group, subresource="status"), watch) for kind in KINDS]
    needed += [
        (Permission("create", "events"), watch),
        (Permission("list", "customresourcedefinitions", "apiextensions.k8s.io", namespace_scoped=False), ""),
        (Permission("list", "namespaces", namespace_scoped=False), ""),
        (Permission("create", "secrets"), pools),
        (Permission("delete", "secrets"), pools),
        (Permission("watch", "pods"), pools),
        (Permission("watch", "events"), pools),
        (Permission("create", "deployments", "apps"), pools),
    ]
    if settings.auto_manage_pools:
        verbs = ("create", "delete")
        needed += [(Permission(verb, kind.plural, kind.group), pools) for kind in KINDS for verb in verbs]
    return needed


@dataclass
class CheckResult:
    name: str
    ok: bool
    detail: str


async def _guard(name: str, check: Callable[[], Awaitable[str]]) -> CheckResult:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            return CheckResult(name, True, await check())
    except TimeoutError:
        return CheckResult(name, False, f"no answer within {CHECK_TIMEOUT:g} s")
    except Exception as exc:
        return CheckResult(name, False, str(exc) or type(exc).__name__)


async def check_controller(settings: Settings) -> str:
    provider = settings.token_provider()
    token = await provider.get_token() if provider else None
    options = settings.hub_options()
    config = SessionConfig(
        url=options.url,
        handshake_timeout=options.handshake_timeout,
        ssl_context=options.ssl_context(),
    )
    session = await HubSession.open(config, lambda target, arguments: None, token)
    await session.close()
    if token:
        auth = "with a token"
    elif provider is not None:
        auth = f"without a token: {provider.problem or 'none to be had'}"
    else:
        auth = "anonymously"
    return f"negotiate + handshake at {redact_url_tokens(options.url)} ({auth})"


async def run_checks(settings: Settings, kubeconfig: Path | None = None) -> list[CheckResult]:
    results = [
        CheckResult("settings", True, f"{settings.mode_name} mode, pools in {settings.pool_namespace!r}")
    ]
    results.append(await _guard("controller", lambda: check_controller(settings)))

    kube: KubeClient | None = None
    try:
        kube = await KubeClient.create(kubeconfig)
    except Exception as exc:
        results.append(CheckResult("kubernetes API", False, f"no usable credentials: {exc}"))
    if kube is not None:
        api = kube.api
        try:
            results.append(await _guard("kubernetes API", lambda: _server_version(api)))
            for kind in KINDS:
                results.append(await _guard("CRD", functools.partial(_crd_installed, api, kind.crd_name)))
            for permission, namespace in required_permissions(settings):
                review = functools.partial(_allowed, api, permission, namespace)
                results.append(await _guard(f"rbac: {permission.describe()}", review))
        finally:
            await kube.close()
    results.append(await _guard("helm", lambda: _helm_version(settings)))
    return results


async def _server_version(api: client.ApiClient) -> str:
    info = await client.VersionApi(api).get_code()
    return f"server {info.git_version}"


async def _crd_installed(api: client.ApiClient, name: str = CRD_NAME) -> str:
    crd = await client.ApiextensionsV1Api(api).read_custom_resource_definition(name)
    versions = ", ".join(v.name for v in crd.spec.versions if v.served)
    return f"{name} ({versions})"


async def _allowed(api: client.ApiClient, permission: Permission, namespace: str) -> str:
    attributes = client.V1ResourceAttributes(
        verb=permission.verb,
        group=permission.group,
        resource=permission.resource,
        subresource=permission.subresource or None,
        namespace=(namespace or None) if permission.namespace_scoped else None,
    )
    review = client.V1SelfSubjectAccessReview(
        spec=client.V1SelfSubjectAccessReviewSpec(resource_attributes=attributes)
    )
    answer = await client.AuthorizationV1Api(api).create_self_subject_access_review(review)
    where = f"in {namespace!r}" if namespace and permission.namespace_scoped else "cluster-wide"
    if not answer.status.allowed:
        reason = f": {answer.status.reason}" if answer.status.reason else ""
        raise PermissionError(f"denied {where}{reason}")
    return f"allowed {where}"


async def _helm_version(settings: Settings) -> str:
    helm = HelmCli(settings.helm.binary)
    version = await helm.version()
    if version.major < 3:
        raise RuntimeError(f"helm {version} is too old; 3.x or 4.x is needed")
    return f"{settings.helm.binary} {version}"


def render(results: list[CheckResult], out: TextIO) -> None:
    width = max(len(r.name) for r in results)
    for result in results:
        mark = "PASS" if result.ok else "FAIL"
        out.write(f"{mark}  {result.name:<{width}}  {result.detail}\n")
    failed = sum(not r.ok for r in results)
    out.write(f"{len(results) - failed} passed, {failed} failed\n")


def main(out: TextIO, kubeconfig: Path | None = None) -> int:
    try:
        settings = load_settings()
        settings.require_controller_uri()
    except ConfigurationError as exc:
        render([CheckResult("settings", False, str(exc))], out)
        return 1
    results = asyncio.run(run_checks(settings, kubeconfig))
    render(results, out)
    return 0 if all(r.ok for r in results) else 1
