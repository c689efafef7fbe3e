"""What email relays report after accepting a message: bounces and spam complaints.

    reports.py   the common shape of a report, and WebhookRefused (401/403/400/413)
    sns.py       Amazon SES through SNS: signature v1/v2, certificate host, subscriptions
    sendgrid.py  SendGrid Event Webhook: ECDSA P-256 over timestamp + body
    mailgun.py   Mailgun: HMAC-SHA256 of timestamp + token
    postmark.py  Postmark: basic auth
    dsn.py       RFC 3464 delivery status notifications (and RFC 5965 spam reports) by email
    replay.py    the replay cache in Redis
    routes.py    the HTTP endpoints: verify, map to the nudge (Message-ID), publish events

Verification and parsing are pure (the certificate fetch aside); routes.py does the I/O.
"""
