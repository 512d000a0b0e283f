# Trubka in a container: a build stage makes the virtualenv, the final stage runs it as a
# non-root user. `trubka serve` applies migrations at start (replicas take turns on a lock).
FROM python:3.11-slim AS build
WORKDIR /src
RUN python -m venv /opt/trubka
COPY pyproject.toml README.md LICENSE ./
COPY bot ./bot
COPY handlers ./handlers
COPY telephony ./telephony
COPY storage ./storage
RUN /opt/trubka/bin/pip install --no-cache-dir .
# The bytecode PYTHONOPTIMIZE=2 runs (below), made now: the image's files are read-only to the
# user that runs it, so it could not be cached at start.
RUN /opt/trubka/bin/python -OO -m compileall -q -j 0 /opt/trubka/lib

FROM python:3.11-slim
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/trubka --create-home trubka
COPY --from=build /opt/trubka /opt/trubka
COPY examples /opt/trubka/examples
ENV PATH=/opt/trubka/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    TRUBKA_HTTP_HOST=0.0.0.0 \
    TRUBKA_HTTP_PORT=8080 \
    TRUBKA_DATABASE_URL=sqlite+aiosqlite:////var/lib/trubka/trubka.db
# Docstrings and asserts left out of the bytecode: 6 MB less memory a process (docs/deploy.md).
ENV PYTHONOPTIMIZE=2
WORKDIR /var/lib/trubka
VOLUME /var/lib/trubka
USER trubka
EXPOSE 8080
# /healthz: 200 when the database answers and no queue or loop is stuck.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('TRUBKA_HTTP_PORT', '8080') + '/healthz', timeout=2)"]
ENTRYPOINT ["trubka"]
CMD ["serve"]
