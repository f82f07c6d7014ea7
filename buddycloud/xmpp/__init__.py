"""The XMPP edge: an XEP-0114 component speaking the Buddycloud channel protocol."""
