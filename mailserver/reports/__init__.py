"""Operator reports (R-OPS-1, R-OPS-2) from the daily counters (``store.usage.day_facts``):
who checks their mailbox as the profile asks (``checks``), and quarterly or yearly statistics
(``stats``) as CSV, JSON or one self-contained HTML file with SVG charts (``html``)."""
