"""Failure signals from a release's pods and Warning events, and when to give up early.

Input is what the Kubernetes API returns as JSON (camelCase keys): ``v1.Pod`` objects and
``v1.Event`` objects (``core/v1``; events written through ``events.k8s.io`` appear there with
``eventTime``/``series`` instead of ``firstTimestamp``/``count``). Nothing here does I/O; times are
passed in by the caller (a monotonic clock in seconds).

Three layers:

* :func:`.pods.classify_pod` and :func:`.events.classify_event` — pure: one object in,
  :class:`.model.Signal` values out. Container signals come from ``status.containerStatuses`` and
  ``status.initContainerStatuses`` (waiting reasons other than ``ContainerCreating``/``PodInitializing``,
  non-zero terminations); pod signals from the ``PodScheduled`` condition and a failed phase
  (``Evicted`` and the like); event signals from ``FailedScheduling``,
  ``FailedMount``/``FailedAttachVolume``, ``FailedCreate`` (quota, admission and PodSecurity refusals
  on ReplicaSets, Jobs, StatefulSets, where no pod appears), probe failures, and any other Warning.
  Events that only repeat what the pod status says (``Failed``/``BackOff`` on a pod) give no signal.
* :class:`.policy.FailFastPolicy` and :func:`.policy.is_fatal` — pure: whether a signal that has
  persisted for so long is hopeless enough to cancel helm instead of waiting for its timeout.
* :class:`.signalset.SignalSet` — the current signals of one deploy, fed by a watcher; it answers "did
  the set change?" (so a progress report is sent only then), clears a pod's signals when the pod
  becomes Ready or is deleted, and tracks how long each problem has persisted for the policy.

:func:`.text.describe` renders one signal as a line (:func:`.text.clean_text` makes a cluster text one
redacted line); ``diagnostics.fit_lines`` bounds the lines of a report. :mod:`.fields` reads the
loosely typed API objects. Import from the module that holds a name; this package exports nothing.
"""
