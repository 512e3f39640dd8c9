"""The self-service web portal (Twisted Web on the server's reactor): routes in mailserver/web/portal.py."""
