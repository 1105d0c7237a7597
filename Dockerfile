# leadflow's production image: one image, three processes (api, worker, projector), picked
# by the command; docker-compose.yml runs all three. Configured by LEADFLOW_* env only.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src

# Dependencies first, from pyproject.toml alone, so a code change does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

COPY . .
RUN pip install --no-deps . \
 && groupadd --system --gid 10001 leadflow \
 && useradd --system --uid 10001 --gid leadflow --home-dir /var/lib/leadflow --create-home leadflow

# Every process creates its data dir even when the log lives in PostgreSQL: make it writable.
ENV LEADFLOW_DATA_DIR=/var/lib/leadflow
WORKDIR /var/lib/leadflow
# Numeric, so an orchestrator can check runAsNonRoot without reading /etc/passwd.
USER 10001:10001

EXPOSE 8000
CMD ["leadflow", "api", "--host", "0.0.0.0"]
