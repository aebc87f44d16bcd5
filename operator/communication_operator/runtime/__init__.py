"""The composition root: the only place that builds the operator's services and wires them together.

* :mod:`.context`: :class:`Runtime` (every service of one running operator, started and stopped by the
  kopf handlers) and :func:`build_runtime`;
* :mod:`.hub`: settings → hub options, token source and the connection;
* :mod:`.secrets`: the settings' secrets, for the log safety net.

Layers (docs/architecture.md): ``app`` and ``handlers`` use this package; it uses ``pools``,
``workloads``, ``hub`` and everything below them; nothing below imports it.
"""

from communication_operator.runtime.context import Runtime, build_runtime

__all__ = ["Runtime", "build_runtime"]
