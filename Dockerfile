# The one weaver image: `weaver` in CI jobs, and `weaver operator run` in the cluster (the
# Deployment of charts/weaver runs it with `operator run ...` as arguments).
#
#   docker build -t weaver:0.2.0 .
#
# A static binary (musl, rustls on aws-lc, which also generates RSA keys: no OpenSSL; libgit2,
# zlib and aws-lc compiled in) on an empty base image, run as a non-root user. Nothing else is
# in the image: no shell, no CA bundle (the cluster's CA comes from the kubeconfig or the
# ServiceAccount mount).

FROM rust:1.95-alpine AS build
RUN apk add --no-cache musl-dev gcc make zlib-dev zlib-static
WORKDIR /src
COPY . .
# Only the binary: the benches and the test API server are not built.
RUN cargo build --release --locked --bin weaver \
 && cp target/release/weaver /weaver \
 && strip /weaver

FROM scratch
COPY --from=build /weaver /weaver
# The chart's securityContext runs it as this user too (runAsNonRoot, runAsUser 65532).
USER 65532:65532
ENTRYPOINT ["/weaver"]
