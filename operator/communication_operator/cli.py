"""``communication-operator run | check | crds [--kind communicationpool|deploymentsite|all] | version``.

Exit codes: 0 after a clean stop, 1 when the operator failed, 2 for a configuration error (one line on
stderr naming the variable).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from communication_operator.settings import ConfigurationError, LogFormat, Settings, load_settings
from communication_operator.version import package_version

PROG = "communication-operator"
EXIT_FAILED = 1
EXIT_CONFIGURATION = 2
CRD_CHOICES = ("communicationpool", "deploymentsite", "all")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Connects this cluster to an OctoMesh Communication Controller."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run", help="run the operator (configuration from OPERATOR__* environment variables)"
    )
    run.add_argument(
        "--kubeconfig", type=Path, help="kubeconfig file (default: in-cluster, then $KUBECONFIG)"
    )
    run.add_argument("--context", help="kubeconfig context")
    run.add_argument("--no-liveness", action="store_true", help="do not serve /healthz")
    check = commands.add_parser(
        "check",
        help="check settings, the controller, Kubernetes access and RBAC, and helm; exit 1 on failure",
    )
    check.add_argument(
        "--kubeconfig", type=Path, help="kubeconfig file (default: in-cluster, then $KUBECONFIG)"
    )
    crds = commands.add_parser("crds", help="print the CustomResourceDefinitions the operator serves")
    crds.add_argument(
        "--kind",
        choices=CRD_CHOICES,
        default="communicationpool",
        help="which CRD: communicationpool (the default), deploymentsite, or all (both, as one YAML stream)",
    )
    commands.add_parser("version", help="print the version")
    return parser


def configure_logging(settings: Settings, stream: TextIO | None = None) -> logging.Handler:
    """Root logging for the process: JSON lines or readable text (``OPERATOR__LOG__FORMAT``) on stderr.

    Replaces kopf's own formatter, so kopf's lines (with the object's namespace and name from its
    ``k8s_ref``) and ours come out in one format. Returns the installed handler.
    """
    from communication_operator.logs import JsonFormatter, TextFormatter, install

    level = getattr(logging, settings.log.level)
    formatter: logging.Formatter = (
        JsonFormatter() if settings.log.format is LogFormat.JSON else TextFormatter()
    )
    handler = install(formatter, level, stream)
    # asyncio's debug chatter (kopf.configure silences it the same way outside debug mode).
    logging.getLogger("asyncio").setLevel(logging.DEBUG if level <= logging.DEBUG else logging.WARNING)
    # aiohttp access logs and kubernetes-asyncio request chatter are noise at INFO.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    return handler


def _run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings()
        settings.require_controller_uri()
    except ConfigurationError as exc:
        print(f"{PROG}: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIGURATION
    configure_logging(settings)
    from communication_operator.app import run_operator

    try:
        asyncio.run(
            run_operator(
                settings, kubeconfig=args.kubeconfig, kube_context=args.context, liveness=not args.no_liveness
            )
        )
    except KeyboardInterrupt:
        return 0
    except Exception:
        logging.getLogger(__name__).exception("the operator failed")
        return EXIT_FAILED
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "crds":
        from communication_operator.resources import communication_pool_crd, deployment_site_crd

        texts = {"communicationpool": [communication_pool_crd()], "deploymentsite": [deployment_site_crd()]}
        texts["all"] = texts["communicationpool"] + texts["deploymentsite"]
        sys.stdout.write("---\n".join(texts[args.kind]))
        return 0
    if args.command == "check":
        from communication_operator import check

        return check.main(sys.stdout, args.kubeconfig)
    if args.command == "version":
        print(package_version())
        return 0
    return _run(args)


if __name__ == "__main__":
    sys.exit(main())
