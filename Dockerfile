# syntax=docker/dockerfile:1
# thresher: one static binary. Build: docker build -t thresher .  (or docker compose build)

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /thresher ./cmd/thresher
# The lake's mount point, owned by the runtime user so that a fresh named
# volume mounted there is writable.
RUN mkdir /lake

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /thresher /thresher
COPY --from=build --chown=65532:65532 /lake /lake
USER 65532:65532
EXPOSE 9100
ENTRYPOINT ["/thresher"]
