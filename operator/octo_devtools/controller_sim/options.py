"""Tunables of the simulator; defaults are ASP.NET Core SignalR's server defaults."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MAX_MESSAGE_SIZE = 32 * 1024  # HubOptionsSetup.DefaultMaximumMessageSize
REAL_CONTROLLER_MAX_MESSAGE_SIZE = 100 * 1024 * 1024  # the Communication Controller raises the limit


@dataclass(frozen=True)
class SimulatorOptions:
    # Bearer token the hub requires (negotiate and WebSocket); None = anonymous hub.
    token: str | None = None
    ping_interval: float = 15.0  # KeepAliveInterval: Ping after this long without sending
    client_timeout: float = 30.0  # ClientTimeoutInterval: drop a client silent for this long
    handshake_timeout: float = 15.0  # HandshakeTimeout
    # A negotiated connection token that is not used for a WebSocket within this time is forgotten.
    negotiate_timeout: float = 15.0
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    # Highest negotiate protocol version answered: 1 since ASP.NET Core 3.0, 0 for older servers.
    max_negotiate_version: int = 1
    # ASP.NET Core <= 7 accepts only handshake version 1; 8+ accepts versions up to 2.
    legacy_version_check: bool = False
    # EnableDetailedErrors: exception type and message appended to error texts (off in ASP.NET by default).
    detailed_errors: bool = False
    # JSON file that keeps pools and workloads across process restarts (like the controller's database).
    state_file: str | None = None
    # Server methods this controller build lacks (an older controller): answered "Method does not exist".
    missing_methods: frozenset[str] = frozenset()
    # "pools" (CommunicationPool era) or "deploymentsites" (DeploymentSite era wire names).
    contract: str = "pools"

    def __post_init__(self) -> None:
        for name in ("ping_interval", "client_timeout", "handshake_timeout", "negotiate_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.max_negotiate_version not in (0, 1):
            raise ValueError(f"max_negotiate_version must be 0 or 1, got {self.max_negotiate_version}")
        if self.max_message_size <= 0:
            raise ValueError(f"max_message_size must be positive, got {self.max_message_size}")
        if self.token == "":
            raise ValueError("token must not be empty; pass None for an anonymous hub")
