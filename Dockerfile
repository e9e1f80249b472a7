# One image for every container of the Helm chart: `filesim serve` (nfs-server), `filesim sync`
# (init container and sidecar) and `filesim ping` (readiness probe).
#   docker build -t filesim:0.1.0 .
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
    && groupadd --gid 10001 filesim \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /var/lib/filesim filesim \
    && mkdir -p /simulator-data /var/lib/filesim /etc/filesim \
    && chown 10001:10001 /simulator-data /var/lib/filesim
# Numeric, so that runAsNonRoot can verify it.
USER 10001:10001
WORKDIR /var/lib/filesim
EXPOSE 2049
ENTRYPOINT ["filesim"]
CMD ["--help"]
