# Container image of the reference clinic (included from the Makefile).
# No registry is reachable, so nothing is pulled: the binary is built static on
# the host and copied into a FROM scratch image (build/clinic.Dockerfile).

IMAGE       ?= telechaos/clinic:dev
IMAGE_LABEL := org.telechaos.managed=true

.PHONY: image
image: ## build the static clinic binary and the FROM scratch image $(IMAGE); prints its id
	@mkdir -p build/out/data
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o build/out/clinic ./cmd/clinic
	@docker build -q --label $(IMAGE_LABEL) -t $(IMAGE) -f build/clinic.Dockerfile build/out

.PHONY: image-clean
image-clean: ## remove $(IMAGE) and build/out
	-docker rmi $(IMAGE)
	rm -rf build/out
