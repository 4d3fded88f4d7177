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

HARNESS_IMAGE ?= telechaos/telechaos:dev
CA_BUNDLE     ?= /etc/ssl/certs/ca-certificates.crt

.PHONY: image-harness
image-harness: ## build the static telechaos CLI and its FROM scratch image $(HARNESS_IMAGE), with the CA bundle; prints its id
	@test -f $(CA_BUNDLE) || { echo "image-harness: no CA bundle at $(CA_BUNDLE) (apt-get install ca-certificates, or CA_BUNDLE=FILE)"; exit 2; }
	@mkdir -p build/out/tc/tmp
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o build/out/tc/telechaos ./cmd/telechaos
	@cp $(CA_BUNDLE) build/out/tc/ca-certificates.crt
	@docker build -q --label $(IMAGE_LABEL) -t $(HARNESS_IMAGE) -f build/telechaos.Dockerfile build/out/tc
