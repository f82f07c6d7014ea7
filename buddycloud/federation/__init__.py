"""Federation: this channel server's dealings with the channel servers of other domains.

An edge beside `buddycloud.xmpp` (it speaks XMPP through the component): discovery of a
domain's channel server (`discovery.py`, with the DNS fallback in `dns.py`), acting for
local users on other domains' channels (`client.py`, `wire.py`), and sending events on
this server's channels to the domains that follow them (`outbox.py`). See
docs/federation.md.
"""
