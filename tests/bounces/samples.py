"""Reports shaped as real mail servers write them: Postfix's and Exchange Online's
delivery status notifications, a delay notice, a feedback-loop (ARF) complaint, and mail
that is no report at all. Written here by hand after RFC 3464 / RFC 5965 and the
servers' usual output."""

from __future__ import annotations

ORIGINAL = """\
Return-Path: <{sender}>\r
Received: from crm.shop.example (crm.shop.example [192.0.2.10])\r
\tby mx.x.io (Postfix) with ESMTPS id 4QxYz1\r
\tfor <{recipient}>; Mon,  7 Dec 2026 00:40:02 +0000 (UTC)\r
From: Shop <news@shop.example>\r
To: {recipient}\r
Subject: A sale for you\r
Date: Mon, 07 Dec 2026 00:40:01 +0000\r
Message-ID: {message_id}\r
MIME-Version: 1.0\r
Content-Type: text/plain; charset="utf-8"\r
Content-Transfer-Encoding: 7bit\r
"""


def postfix_dsn(
    to: str,
    message_id: str,
    recipient: str = "p1@x.io",
    *,
    action: str = "failed",
    status: str = "5.1.1",
    diagnostic: str = "smtp; 550 5.1.1 <p1@x.io>: Recipient address rejected: User unknown",
    headers_only: bool = False,
    report_id: str = "<20261207004005.4QxYz1@mx.x.io>",
    sender: str = "news@shop.example",
) -> bytes:
    """Postfix's bounce: text/plain, message/delivery-status, and the original (whole,
    or text/rfc822-headers)."""
    original = ORIGINAL.format(sender=sender, recipient=recipient, message_id=message_id)
    kind = "text/rfc822-headers" if headers_only else "message/rfc822"
    body = "" if headers_only else "\r\nHi Person1, the sale is on.\r\n"
    return f"""\
Return-Path: <>\r
Received: by mx.x.io (Postfix) id 4QxYz1; Mon,  7 Dec 2026 00:40:05 +0000 (UTC)\r
Date: Mon,  7 Dec 2026 00:40:05 +0000 (UTC)\r
From: MAILER-DAEMON@mx.x.io (Mail Delivery System)\r
Subject: Undelivered Mail Returned to Sender\r
To: {to}\r
Auto-Submitted: auto-replied\r
MIME-Version: 1.0\r
Content-Type: multipart/report; report-type=delivery-status;\r
\tboundary="4QxYz1.1765068005/mx.x.io"\r
Content-Transfer-Encoding: 8bit\r
Message-Id: {report_id}\r
\r
This is a MIME-encapsulated message.\r
\r
--4QxYz1.1765068005/mx.x.io\r
Content-Description: Notification\r
Content-Type: text/plain; charset=us-ascii\r
\r
This is the mail system at host mx.x.io.\r
\r
I'm sorry to have to inform you that your message could not\r
be delivered to one or more recipients.\r
\r
<{recipient}>: host mail.x.io[198.51.100.7] said: 550 5.1.1\r
    <{recipient}>: Recipient address rejected: User unknown\r
\r
--4QxYz1.1765068005/mx.x.io\r
Content-Description: Delivery report\r
Content-Type: message/delivery-status\r
\r
Reporting-MTA: dns; mx.x.io\r
X-Postfix-Queue-ID: 4QxYz1\r
X-Postfix-Sender: rfc822; {sender}\r
Arrival-Date: Mon,  7 Dec 2026 00:40:02 +0000 (UTC)\r
\r
Final-Recipient: rfc822; {recipient}\r
Original-Recipient: rfc822;{recipient}\r
Action: {action}\r
Status: {status}\r
Remote-MTA: dns; mail.x.io\r
Diagnostic-Code: {diagnostic}\r
\r
--4QxYz1.1765068005/mx.x.io\r
Content-Description: Undelivered Message{" Headers" if headers_only else ""}\r
Content-Type: {kind}\r
Content-Transfer-Encoding: 8bit\r
\r
{original}{body}\r
--4QxYz1.1765068005/mx.x.io--\r
""".encode()


def exchange_dsn(to: str, message_id: str, recipient: str = "p2@x.io") -> bytes:
    """Exchange Online's non-delivery report: multipart/alternative for people, then
    the delivery status and the original's headers."""
    original = ORIGINAL.format(sender=to, recipient=recipient, message_id=message_id)
    return f"""\
From: Microsoft Outlook <postmaster@x.onmicrosoft.com>\r
To: <{to}>\r
Date: Mon, 7 Dec 2026 00:41:10 +0000\r
Content-Type: multipart/report; report-type=delivery-status;\r
\tboundary="9c1b7a2e-5d0f-4f2e-b1c3-0e7d3d6b8a11"\r
X-MS-Exchange-Message-Is-Ndr:\r
Content-Language: en-US\r
Message-ID: <6e0b1c2d-aaaa-4bbb-8ccc-1d2e3f4a5b6c@AM0PR01MB1234.eurprd01.prod.exchangelabs.com>\r
In-Reply-To: {message_id}\r
Subject: Undeliverable: A sale for you\r
Auto-Submitted: auto-replied\r
MIME-Version: 1.0\r
\r
--9c1b7a2e-5d0f-4f2e-b1c3-0e7d3d6b8a11\r
Content-Type: multipart/alternative; differences=Content-Type;\r
\tboundary="0f3e-alt"\r
\r
--0f3e-alt\r
Content-Type: text/plain; charset="us-ascii"\r
Content-Transfer-Encoding: quoted-printable\r
\r
Your message to {recipient} couldn't be delivered.\r
{recipient.split("@")[0]} wasn't found at x.io.\r
--0f3e-alt\r
Content-Type: text/html; charset="us-ascii"\r
Content-Transfer-Encoding: quoted-printable\r
\r
<html><body><p>Your message couldn't be delivered.</p></body></html>\r
--0f3e-alt--\r
\r
--9c1b7a2e-5d0f-4f2e-b1c3-0e7d3d6b8a11\r
Content-Type: message/delivery-status\r
\r
Reporting-MTA: dns;AM0PR01MB1234.eurprd01.prod.exchangelabs.com\r
Received-From-MTA: dns;crm.shop.example\r
Arrival-Date: Mon, 7 Dec 2026 00:41:08 +0000\r
\r
Final-Recipient: rfc822;{recipient}\r
Action: failed\r
Status: 5.1.10\r
Diagnostic-Code: smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not\r
 found by SMTP address lookup\r
\r
--9c1b7a2e-5d0f-4f2e-b1c3-0e7d3d6b8a11\r
Content-Type: text/rfc822-headers\r
\r
{original}\r
--9c1b7a2e-5d0f-4f2e-b1c3-0e7d3d6b8a11--\r
""".encode()


def delayed_dsn(to: str, message_id: str, recipient: str = "p3@x.io", **more: str) -> bytes:
    """Postfix's "delayed mail" warning: the message is still queued."""
    return postfix_dsn(
        to,
        message_id,
        recipient,
        action="delayed",
        status="4.4.1",
        diagnostic="X-Postfix; connect to mail.x.io[198.51.100.7]:25: Connection timed out",
        headers_only=True,
        **more,  # type: ignore[arg-type]
    )


def arf_report(
    to: str,
    message_id: str,
    recipient: str = "p4@x.io",
    *,
    feedback_type: str = "abuse",
    mail_from: str = "news@shop.example",
    report_id: str = "<arf-20261207-0001@fbl.x.io>",
) -> bytes:
    """A feedback-loop complaint (RFC 5965), as a mailbox provider sends it when the
    recipient pressed "this is spam"."""
    original = ORIGINAL.format(sender=mail_from, recipient=recipient, message_id=message_id)
    return f"""\
From: <feedback@fbl.x.io>\r
Date: Mon, 7 Dec 2026 01:02:03 +0000\r
Subject: FW: A sale for you\r
To: <{to}>\r
Message-ID: {report_id}\r
MIME-Version: 1.0\r
Content-Type: multipart/report; report-type=feedback-report;\r
\tboundary="part1_13d.2e68ed54_fbl"\r
\r
--part1_13d.2e68ed54_fbl\r
Content-Type: text/plain; charset="US-ASCII"\r
Content-Transfer-Encoding: 7bit\r
\r
This is an email abuse report for an email message received from IP\r
192.0.2.10 on Mon, 7 Dec 2026 00:40:02 +0000.\r
\r
--part1_13d.2e68ed54_fbl\r
Content-Type: message/feedback-report\r
\r
Feedback-Type: {feedback_type}\r
User-Agent: XFBL/1.1\r
Version: 1\r
Original-Mail-From: <{mail_from}>\r
Arrival-Date: Mon, 7 Dec 2026 00:40:02 +0000\r
Source-IP: 192.0.2.10\r
Reported-Domain: shop.example\r
\r
--part1_13d.2e68ed54_fbl\r
Content-Type: message/rfc822\r
Content-Disposition: inline\r
\r
{original}\r
Hi Person4, the sale is on.\r
\r
--part1_13d.2e68ed54_fbl--\r
""".encode()


def out_of_office(to: str, message_id: str) -> bytes:
    """An autoreply: mail to the bounce address that is no report."""
    return f"""\
From: Person5 <p5@x.io>\r
To: {to}\r
Subject: Automatic reply: A sale for you\r
In-Reply-To: {message_id}\r
Auto-Submitted: auto-replied\r
Message-ID: <ooo-1@x.io>\r
Content-Type: text/plain; charset=utf-8\r
\r
I am out of the office until Monday.\r
""".encode()


def broken_mime(to: str, message_id: str) -> bytes:
    """A multipart/report whose boundary never comes: parts cannot be told apart."""
    dsn = postfix_dsn(to, message_id)
    return dsn.replace(b'boundary="4QxYz1.1765068005/mx.x.io"', b'boundary="no-such-boundary"')
