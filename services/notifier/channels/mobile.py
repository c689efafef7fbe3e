"""The "mobile" channel: a partner's app devices, each through its platform's provider.

One channel, not "fcm" and "apns": a partner consents to (and unsubscribes from) notifications
of the app, whatever phone they carry, and an app team publishes devices, not providers.
Android devices go to FCM (fcm.py), iOS devices to APNs (apns.py). Delivery sends to every
live device of a partner once, each send with its own idempotency key and outcome
(delivery.py); this class only routes one message to its device's provider.

Libraries: the protocol work is httpx with h2 (HTTP/2, pooled, timeouts) and PyJWT (ES256,
RS256), as for the other HTTP channels. firebase-admin (7.x) pins httpx==0.28.1 and pulls
google-api-core[grpc], google-cloud-firestore and google-cloud-storage for one POST; aioapns
(4.0) brings its own HTTP/2 connection layer on pyOpenSSL next to httpx's, with its own retry
policy, where this service wants its own error mapping and retry queue.
"""

from __future__ import annotations

from typing import Literal

from couples_nudge.notifier.channels.base import Channel, Outgoing
from couples_nudge.notifier.errors import PermanentSendError
from couples_nudge_schemas import AndroidDevice, IosDevice

__all__ = ["MobileChannel"]


class MobileChannel:
    name: Literal["mobile"] = "mobile"

    def __init__(self, *, fcm: Channel | None = None, apns: Channel | None = None) -> None:
        self.fcm = fcm
        self.apns = apns

    def serves(self, platform: str) -> bool:
        """Whether a provider for this platform is configured."""
        return (
            self.fcm if platform == "android" else self.apns if platform == "ios" else None
        ) is not None

    async def send(self, message: Outgoing) -> None:
        device = message.address
        provider = (
            self.fcm
            if isinstance(device, AndroidDevice)
            else self.apns
            if isinstance(device, IosDevice)
            else None
        )
        if provider is None:
            raise PermanentSendError("mobile", "no provider for this device")
        await provider.send(message)

    async def close(self) -> None:
        for provider in (self.fcm, self.apns):
            if provider is not None:
                await provider.close()
