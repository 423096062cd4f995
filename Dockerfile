# Fanseed: a static binary on a minimal image, running as a non-root user.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
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
