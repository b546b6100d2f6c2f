# mesh-webhook image with Docker: a static, non-root, distroless image.
#   docker build -t ghcr.io/kubectl-mesh/mesh-webhook:v0.1.0 --build-arg VERSION=v0.1.0 .
# Without a Docker daemon, `make image` builds the same image (binary, nonroot
# user 65532, CA bundle) from scratch with go-containerregistry (hack/image).

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY cmd/ cmd/
COPY pkg/ pkg/
ARG VERSION=v0.0.0-dev
ARG COMMIT=unknown
ARG TARGETOS=linux
ARG TARGETARCH=amd64
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath \
      -ldflags "-s -w -X github.com/kubectl-mesh/kubectl-mesh/pkg/version.Version=${VERSION} -X github.com/kubectl-mesh/kubectl-mesh/pkg/version.Commit=${COMMIT}" \
      -o /out/mesh-webhook ./cmd/mesh-webhook

# static:nonroot holds /etc/passwd with nonroot (65532), CA certificates and
# tzdata, and nothing else: no shell, no libc.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/mesh-webhook /mesh-webhook
USER 65532:65532
EXPOSE 9443 8080 8081
ENTRYPOINT ["/mesh-webhook"]
