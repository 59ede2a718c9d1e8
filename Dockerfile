# Latchkey in a container: a static-ish Rust binary on Debian slim, as a non-root user.
#
#   docker build -t latchkey --build-arg LATCHKEY_GIT_REV=$(git rev-parse --short HEAD) .
#   docker run -d -p 8080:8080 -v latchkey-data:/var/lib/latchkey latchkey --public-url https://login.example.com
#   docker exec -it <container> latchkey admin --data-dir /var/lib/latchkey user add alice --admin
#
# Arguments after the image name are added to `latchkey serve`. packaging/check.sh runs
# these same steps as a plain shell script where no container engine is available.

FROM rust:bookworm AS build
WORKDIR /src
COPY . .
# .git is not in the build context; `latchkey --version` takes the revision from here.
ARG LATCHKEY_GIT_REV=
ENV LATCHKEY_GIT_REV=${LATCHKEY_GIT_REV}
RUN cargo build --release --locked -p latchkey \
 && install -m 0755 target/release/latchkey /usr/local/bin/latchkey

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/latchkey --shell /usr/sbin/nologin latchkey \
 && install -d -o latchkey -g latchkey -m 0700 /var/lib/latchkey
COPY --from=build /usr/local/bin/latchkey /usr/local/bin/latchkey
USER latchkey
VOLUME /var/lib/latchkey
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["latchkey", "serve", "--data-dir", "/var/lib/latchkey", "--listen", "0.0.0.0:8080"]
