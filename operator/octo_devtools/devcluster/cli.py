"""`devcluster`: prepare | up [--kind | --node real] | down | env | kubelet | operator-image.

See docs/local-cluster.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time
from pathlib import Path

from octo_devtools.devcluster import lifecycle
from octo_devtools.devcluster.controlplane import ClusterError, ClusterState
from octo_devtools.devcluster.paths import Toolchain, default_state_dir
from octo_devtools.devcluster.prepare import PrepareError, prepare
from octo_devtools.devcluster.rules import RuleError, load_rules_file


def _progress(line: str) -> None:
    # Progress goes to stderr so stdout stays `eval`-able.
    print(line, file=sys.stderr, flush=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="devcluster", description=__doc__)
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="where the cluster's state, logs and kubeconfig live (default: "
        "$COMMUNICATION_OPERATOR_CACHE/devcluster or ~/.cache/communication-operator/devcluster)",
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "prepare", help="build/fetch the cached binaries (control plane, helm 4 and 3, kubectl)"
    )
    up = commands.add_parser("up", help="start (or reuse) the local cluster and print its environment")
    up.add_argument(
        "--kind", action="store_true", help="create a kind cluster instead (needs docker and kind)"
    )
    up.add_argument(
        "--node",
        choices=("fake", "real"),
        default="fake",
        help="real: containerd, kubelet and kube-scheduler run real pods (root; see docs/local-cluster.md); "
        "fake (default): no node process, `devcluster kubelet` plays the pods",
    )
    image = commands.add_parser(
        "operator-image",
        help="build the operator's image without Docker (cached by input hash) and print its reference; "
        "with a running real node, import it into the node's containerd",
    )
    image.add_argument("--force", action="store_true", help="rebuild even if the cached image is current")
    image.add_argument("--no-import", action="store_true", help="only build (or find) the image tarball")
    commands.add_parser("down", help="stop the processes `up` started and remove the state")
    commands.add_parser("env", help='print exports for `eval "$(devcluster env)"`')
    kubelet = commands.add_parser("kubelet", help="run the fake kubelet against the cluster until Ctrl-C")
    kubelet.add_argument("--rules", type=Path, help="YAML/JSON rules file")
    kubelet.add_argument("--configmap", metavar="NS/NAME", help="ConfigMap whose `rules.yaml` is watched")
    kubelet.add_argument("--namespace", help="only handle pods in this namespace (default: all)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    state_dir: Path = (args.state_dir or default_state_dir()).expanduser().resolve()
    try:
        if args.command == "prepare":
            toolchain = prepare(_progress)
            _progress(
                f"devcluster: all binaries cached ({toolchain.helm.parent.parent}, {toolchain.etcd.parent})"
            )
        elif args.command == "up":
            started = time.monotonic()
            result = lifecycle.up(state_dir, _progress, use_kind=args.kind, node=args.node)
            if not result.reused:
                _progress(f"devcluster: ready at {result.state.server} in {time.monotonic() - started:.1f} s")
            print(lifecycle.shell_exports(result.state, result.toolchain))
        elif args.command == "operator-image":
            print(_operator_image(state_dir, force=args.force, import_it=not args.no_import))
        elif args.command == "down":
            lifecycle.down(state_dir, _progress)
        elif args.command == "env":
            state = _require_state(state_dir)
            print(lifecycle.shell_exports(state, Toolchain.from_cache()))
        elif args.command == "kubelet":
            return _run_kubelet(state_dir, args)
    except (ClusterError, PrepareError, RuleError) as error:
        print(f"devcluster: error: {error}", file=sys.stderr)
        return 1
    return 0


def _operator_image(state_dir: Path, *, force: bool, import_it: bool) -> str:
    from octo_devtools.devcluster import operator_image

    built = operator_image.build_operator_image(_progress, force=force)
    state = ClusterState.load(state_dir)
    if import_it and state is not None and state.node == "real":
        operator_image.import_image(state, built, _progress)
    elif import_it:
        _progress(
            f"devcluster: no real node recorded in {state_dir}; the image is only built ({built.tarball})"
        )
    return built.reference


def _require_state(state_dir: Path) -> ClusterState:
    state = ClusterState.load(state_dir)
    if state is None:
        raise ClusterError(f"no cluster recorded in {state_dir}; run `devcluster up` first")
    return state


def _run_kubelet(state_dir: Path, args: argparse.Namespace) -> int:
    from octo_devtools.devcluster.kubelet import FakeKubelet  # kubernetes-asyncio only when needed

    state = _require_state(state_dir)
    if state.mode == "kind":
        raise ClusterError("a kind cluster has a real kubelet; the fake one is for the local control plane")
    rules = load_rules_file(args.rules) if args.rules else []
    configmap = None
    if args.configmap:
        namespace, slash, name = args.configmap.partition("/")
        if not slash or not namespace or not name:
            raise ClusterError(f"--configmap wants NAMESPACE/NAME, got {args.configmap!r}")
        configmap = (namespace, name)

    async def run() -> None:
        kubelet = await FakeKubelet.from_kubeconfig(
            state.kubeconfig, namespace=args.namespace, rules=rules, configmap=configmap
        )
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)  # stop like Ctrl-C
        with contextlib.suppress(asyncio.CancelledError):
            await kubelet.run_forever()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
    _progress("devcluster: fake kubelet stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
