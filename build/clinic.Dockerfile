# The reference clinic as a FROM scratch image. No base image can be pulled
# here, so the binary is built on the host (CGO_ENABLED=0, static) and copied
# in; see build/image.mk and harness/deploy.BuildClinicImage. The build context
# holds: clinic (the binary) and data/ (an empty directory).
FROM scratch
# /data is created owned by the runtime user so a fresh named volume mounted
# there inherits that ownership (Docker copies it into an empty volume).
COPY --chown=65532:65532 data /data
COPY clinic /clinic
USER 65532:65532
# 8080/tcp: HTTP API. The media UDP port must be published pinned
# host=container on 127.0.0.1 (the answer advertises 127.0.0.1:<port>), e.g.
#   docker run -p 127.0.0.1::8080 -p 127.0.0.1:8443:8443/udp --tmpfs /tmp IMAGE
# harness/deploy.Run picks a free port per run and passes its own flags.
EXPOSE 8080/tcp
LABEL org.telechaos.managed="true" org.opencontainers.image.title="telechaos clinic"
ENTRYPOINT ["/clinic"]
CMD ["--addr", "0.0.0.0:8080", "--data", "/data", "--udp-port", "8443", "--listen-ip", "0.0.0.0", "--advertised-ip", "127.0.0.1"]
