# syntax=docker/dockerfile:1
# Build: docker build -t frontdoor .
# Run:   docker run -p 8080:8080 -v $PWD/config.yaml:/etc/frontdoor/config.yaml -v fd-data:/data frontdoor
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/frontdoor ./cmd/frontdoor \
 && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/wxsim ./cmd/wxsim \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/frontdoor /usr/local/bin/frontdoor
COPY --from=build /out/wxsim /usr/local/bin/wxsim
COPY --from=build /src/config.yaml /etc/frontdoor/config.yaml
COPY --from=build --chown=nonroot:nonroot /out/data /data
USER nonroot:nonroot
ENV FRONTDOOR_CONFIG=/etc/frontdoor/config.yaml FRONTDOOR_DB=/data/frontdoor.db
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/frontdoor"]
CMD ["serve"]
