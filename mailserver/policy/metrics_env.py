"""The environment variable of prometheus-client's multiprocess mode, apart from
mailserver/policy/metrics.py so that mailserver/app.py can set it before anything imports
prometheus-client (which reads it once, at import)."""

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
