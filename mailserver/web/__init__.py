"""The self-service web portal (Twisted Web on the server's reactor): mailserver/web/portal.py."""
