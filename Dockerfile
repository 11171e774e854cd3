# followd in an image with nothing else: no base image, no shell, no package.
#
# The binaries are static (CGO_ENABLED=0) and built on the host by
# `make image`, which puts them in bin/linux/ and then runs
#   docker build -t followgraph/followd:$(VERSION) -t followgraph/followd:latest .
# Building by hand:
#   mkdir -p bin/linux/data
#   CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags "-s -w -X main.version=$(git describe --always --dirty)" \
#       -o bin/linux/ ./cmd/followd ./cmd/followctl
#   docker build -t followgraph/followd .
#
# Nothing is pulled: FROM scratch needs no registry.
FROM scratch

# followd runs as nobody (65534). /data is created owned by nobody, so a
# new named volume mounted there inherits that ownership. A bind-mounted
# host directory must be writable by uid 65534 (or run the container with
# --user 0).
COPY --chown=65534:65534 bin/linux/data /data
COPY bin/linux/followd bin/linux/followctl /
USER 65534:65534

# Client protocol, raft (all shards over one port), gossip (TCP and UDP),
# HTTP (/metrics, /healthz, /readyz).
EXPOSE 7700 7701 7702/tcp 7702/udp 7780
VOLUME ["/data"]

# The listen addresses default to 127.0.0.1 outside a container; here every
# port must be reachable from the other containers. Flags on the command
# line (docker run IMAGE --flag ..., compose's command:) override these, and
# so do FOLLOWD_* variables given with -e. In a cluster, also set
# --advertise to the address the other nodes and the clients reach this
# container by (see docs/OPERATIONS.md, "Running a cluster").
ENV FOLLOWD_DATA_DIR=/data \
    FOLLOWD_LISTEN=0.0.0.0:7700 \
    FOLLOWD_HTTP=0.0.0.0:7780

# No shell or curl here: the health check is followctl, which exits 0 when
# the node answers a status request (whatever the shards' health; use
# /readyz or `followctl status --json` for that). FOLLOWCTL_ADDR changes the
# address it asks, if --listen does not include 127.0.0.1:7700.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["/followctl", "--timeout", "4s", "--json", "status"]

STOPSIGNAL SIGTERM
ENTRYPOINT ["/followd"]
