# Fanseed: a static binary on a minimal image, running as a non-root user.

# The episode player: webtorrent bundled with esbuild, versions pinned in web/package-lock.json.
FROM node:22-bookworm-slim AS player
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY web/ ./
RUN mkdir -p ../templates/static/player && node build.mjs

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
COPY --from=player /src/templates/static/player/ templates/static/player/
ARG VERSION=dev
RUN mkdir -p /out/data && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/fanseed ./cmd/fanseed

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/fanseed /usr/local/bin/fanseed
COPY --from=build --chown=65532:65532 /out/data /var/lib/fanseed
ENV ADDR=0.0.0.0:8080 DATA_DIR=/var/lib/fanseed
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/fanseed"]
CMD ["serve"]
