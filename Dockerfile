# One image for every Signoff process: `api`, `worker` (see docker-compose.yml) or `token`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml ./
COPY api ./api
COPY domain ./domain
COPY store ./store
COPY config ./config
COPY workflows ./workflows
COPY workers ./workers
# The check runs outside /app, so it sees the installed package: /docs and /redoc need its assets.
RUN pip install . \
    && cd / && python -c "import api.docs as d; assert (d.ASSETS / 'redoc.standalone.js').is_file(), d.ASSETS" \
    && useradd --system --uid 10001 --home-dir /data --create-home signoff \
    && install -d -o signoff -m 700 /var/lib/signoff-audit
# (a named volume mounted there starts with this directory's owner: the projector writes its audit key in it)

USER signoff
WORKDIR /data
ENV SIGNOFF_DATA_DIR=/data
EXPOSE 8000
ENTRYPOINT ["signoff"]
CMD ["api", "--host", "0.0.0.0"]
