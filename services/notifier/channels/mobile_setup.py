"""Building the "mobile" channel's providers from the settings (FCM, APNs, or both)."""

from __future__ import annotations

import ssl

from couples_nudge.notifier.channels.apns import ApnsChannel
from couples_nudge.notifier.channels.apns_auth import ProviderToken, load_p8
from couples_nudge.notifier.channels.fcm import FcmChannel
from couples_nudge.notifier.channels.fcm_auth import load_service_account
from couples_nudge.notifier.channels.mobile import MobileChannel
from couples_nudge.notifier.settings import NotifierSettings

__all__ = ["mobile_channel"]


def mobile_channel(settings: NotifierSettings) -> MobileChannel:
    verify: ssl.SSLContext | bool = True
    if settings.mobile_ca_file is not None:
        verify = ssl.create_default_context(cafile=str(settings.mobile_ca_file))
    fcm = apns = None
    if settings.fcm_credentials_file is not None:
        fcm = FcmChannel(
            account=load_service_account(settings.fcm_credentials_file),
            project_id=settings.fcm_project_id,
            endpoint=settings.fcm_endpoint,
            ttl=settings.push_ttl,
            timeout=settings.push_timeout,
            concurrency=settings.push_concurrency,
            verify=verify,
        )
    if (
        settings.apns_key_file is not None
        and settings.apns_key_id is not None
        and settings.apns_team_id is not None
    ):
        apns = ApnsChannel(
            provider_token=ProviderToken(
                load_p8(settings.apns_key_file),
                key_id=settings.apns_key_id,
                team_id=settings.apns_team_id,
            ),
            topic=settings.apns_topic,
            environment=settings.apns_environment,
            host=settings.apns_host,
            ttl=settings.push_ttl,
            timeout=settings.push_timeout,
            concurrency=settings.push_concurrency,
            verify=verify,
        )
    return MobileChannel(fcm=fcm, apns=apns)
