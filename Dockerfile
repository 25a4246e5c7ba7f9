# lanyard's container image: a static binary on distroless, running as nonroot (65532).
# Build with `make image`; the binary is built by the Makefile's build target, the same one the
# e2e suite runs, so the image holds what was tested.
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=devel
RUN make build BIN=/out/lanyard VERSION=${VERSION}

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/lanyard /lanyard
USER 65532:65532
ENTRYPOINT ["/lanyard"]
