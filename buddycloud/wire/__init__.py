"""Wire formats both edges speak: Atom entries and feeds, and the safe XML beneath them.

The XMPP edge carries Atom inside pubsub items; the HTTP edge serves it by content
negotiation. Neither edge imports the other, so what they share lives here, over the
domain only (`lint-imports`).
"""
