"""Federation: this channel server's dealings with the channel servers of other domains.

An edge beside `buddycloud.xmpp` (it speaks XMPP through the component): discovery of a
domain's channel server (`discovery.py`, with the DNS fallback in `dns.py`). See
docs/federation.md.
"""
