# One image for every container of the Helm chart: `filesim serve` (nfs-server), `filesim sync`
# (init container and sidecar) and `filesim ping` (readiness probe).
#   docker build -t filesim:0.1.0 .
# Without a registry, build on a base made from Debian packages (deploy/podman/README.md):
#   python3 deploy/podman/pods.py build        # mmdebstrap base + podman build --pull=never
# BASE_IMAGE is any Debian-like image with python3 (>= 3.11) and pip.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# The wheel of filesim and of every dependency, so the final stage needs no network.
RUN python3 -m pip wheel --no-cache-dir --wheel-dir /wheels .

FROM ${BASE_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY --from=build /wheels /wheels
# uid/gid 1000: what a default `minikube mount` presents as the owner of every file of the
# mounted folder (docs/kubernetes.md), so the pods can write the testers' folders.
RUN python3 -m pip install --no-cache-dir --no-index --find-links /wheels filesim \
    && rm -rf /wheels \
    && groupadd --gid 1000 filesim \
    && useradd --uid 1000 --gid 1000 --no-create-home --home-dir /var/lib/filesim filesim \
    && mkdir -p /simulator-data /var/lib/filesim /etc/filesim \
    && chown 1000:1000 /simulator-data /var/lib/filesim
# Numeric, so that runAsNonRoot can verify it.
USER 1000:1000
WORKDIR /var/lib/filesim
EXPOSE 2049
ENTRYPOINT ["filesim"]
CMD ["--help"]
