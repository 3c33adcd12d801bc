# One image for both agents (and the client): slim Python, runtime dependencies only, non-root.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin mqttpush \
    && mkdir /data && chown mqttpush:mqttpush /data
WORKDIR /app

COPY pyproject.toml README.md ./
COPY mqttpush ./mqttpush
RUN pip install . && rm -rf /root/.cache

COPY config ./config

USER mqttpush
ENV MQTTPUSH_PROFILE=open \
    MQTTPUSH_CONFIG_DIR=/app/config

ENTRYPOINT ["mqttpush"]
CMD ["serve", "sender"]
