# Image targets; the top-level Makefile can `include image/image.mk`.
#   make image          production root tree (printed path), cached
#   make image-test     the same plus the test stand-ins (what the system tests boot)
#   make image OUT=dir  build into dir instead of the cache
IMAGE_CACHE ?= /var/cache/edge-agent-image
IMAGE_ARGS = --cache $(IMAGE_CACHE) $(if $(OUT),--out $(OUT)) $(if $(AIRGAP),--airgap $(AIRGAP))

.PHONY: image image-test
image:
	bash image/build.sh --variant production $(IMAGE_ARGS)

image-test:
	bash image/build.sh --variant test $(IMAGE_ARGS)
