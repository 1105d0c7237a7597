# leadflow's production image: one image, three processes (api, worker, projector), picked
# by the command; docker-compose.yml runs all three. Configured by LEADFLOW_* env only.
# The base image is pinned by digest and every Python package by version and hash, so two
# builds of the same commit install the same files.
FROM python:3.11.15-slim-bookworm@sha256:d29f48a31a8b408ed19272ca1e7b10ebae13b240a27e862d3d4217c528e2e0c3

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src

# Dependencies first, from the lock alone (`make lock`), so a code change does not reinstall
# them. --require-hashes refuses any package, or dependency of one, that the lock does not
# pin with its hash. The lock holds no dev tools and no Temporal dev server.
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock

# The project itself, built with the locked setuptools rather than one fetched at build time.
COPY . .
RUN pip install --no-deps --no-build-isolation . \
 && groupadd --system --gid 10001 leadflow \
 && useradd --system --uid 10001 --gid leadflow --home-dir /var/lib/leadflow --create-home leadflow

# Every process creates its data dir even when the log lives in PostgreSQL: make it writable.
ENV LEADFLOW_DATA_DIR=/var/lib/leadflow
WORKDIR /var/lib/leadflow
# Numeric, so an orchestrator can check runAsNonRoot without reading /etc/passwd.
USER 10001:10001

EXPOSE 8000
CMD ["leadflow", "api", "--host", "0.0.0.0"]
