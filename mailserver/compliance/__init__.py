"""The regulations' requirements as data (requirements.yaml) and what the running configuration
makes of them: the requirements matrix (docs/requirements.md is rendered from it) and the
``mailserver compliance`` report an inspector reads (R-* of docs/requirements.md)."""
