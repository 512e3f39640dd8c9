# docker build -t mailserver .
# docker run -v maildata:/data -p 25:2525 -p 587:2587 -p 465:2465 -p 143:1143 -p 993:1993 \
#            -p 110:1110 -p 995:1995 -e MAILSERVER_INIT_ARGS="--profile molisa --domain molisa.gov.vn" mailserver
# The first start writes /data/mailserver.yaml (listening on all interfaces inside the container);
# edit it there and restart. Accounts: docker exec <container> mailserver account add "Nguyễn Văn An".
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 MAILSERVER_CONFIG=/data/mailserver.yaml

WORKDIR /src
COPY pyproject.toml README.md ./
COPY config ./config
COPY mailserver ./mailserver
COPY storage ./storage
COPY smtp ./smtp
COPY imap ./imap
COPY pop3 ./pop3
COPY quota ./quota
RUN pip install --no-cache-dir . \
    && useradd --system --home-dir /data --shell /usr/sbin/nologin mailserver \
    && mkdir -p /data && chown mailserver:mailserver /data

USER mailserver
WORKDIR /data
VOLUME /data
# Unprivileged ports inside the container; map them to 25/587/465/143/993/110/995 with -p.
EXPOSE 2525 2587 2465 1143 1993 1110 1995 8443

# /healthz answers ok once the store does; `mailserver health` asks it (exit 0 or 1).
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 CMD ["mailserver", "health", "--timeout", "8"]
STOPSIGNAL SIGTERM
CMD ["sh", "-c", "[ -f \"$MAILSERVER_CONFIG\" ] || mailserver init --data-dir /data --listen 0.0.0.0 $MAILSERVER_INIT_ARGS; exec mailserver serve"]
