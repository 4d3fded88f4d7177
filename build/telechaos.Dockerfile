# telechaos (the harness CLI) as a FROM scratch image, for sharded runs on
# Kubernetes (deploy/k8s). Like build/clinic.Dockerfile nothing is pulled: the
# static binary is built on the host and copied in. `make image-harness`
# builds it; the build context (build/out/tc) holds the binary `telechaos`,
# an empty `tmp/` and the host's CA bundle `ca-certificates.crt` (Debian's
# ca-certificates), so an https:// target verifies against the usual public
# roots. A private CA: mount its PEM file and pass --ca-file (or replace
# the bundle with SSL_CERT_FILE).
FROM scratch
COPY --chown=65532:65532 tmp /tmp
COPY telechaos /telechaos
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
USER 65532:65532
ENV TMPDIR=/tmp
# 9464/tcp: /metrics during a run (--metrics-addr 0.0.0.0:9464).
EXPOSE 9464/tcp
LABEL org.telechaos.managed="true" org.opencontainers.image.title="telechaos"
ENTRYPOINT ["/telechaos"]
CMD ["help"]
