# telechaos (the harness CLI) as a FROM scratch image, for sharded runs on
# Kubernetes (deploy/k8s). Like build/clinic.Dockerfile nothing is pulled: the
# static binary is built on the host and copied in. Build context: a
# directory holding the binary `telechaos` and an empty `tmp/`:
#   mkdir -p build/out/tc/tmp
#   CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o build/out/tc/telechaos ./cmd/telechaos
#   docker build -t REGISTRY/telechaos/telechaos:TAG -f build/telechaos.Dockerfile build/out/tc
# No CA certificates are in the image: an https:// target needs them mounted
# at /etc/ssl/certs/ca-certificates.crt (SSL_CERT_FILE) or a plain http URL.
FROM scratch
COPY --chown=65532:65532 tmp /tmp
COPY telechaos /telechaos
USER 65532:65532
ENV TMPDIR=/tmp
# 9464/tcp: /metrics during a run (--metrics-addr 0.0.0.0:9464).
EXPOSE 9464/tcp
LABEL org.telechaos.managed="true" org.opencontainers.image.title="telechaos"
ENTRYPOINT ["/telechaos"]
CMD ["help"]
