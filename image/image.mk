# Image targets; the top-level Makefile can `include image/image.mk`.
#   make image          production tree, its .deb and the bootable disk (raw + qcow2), cached; prints the paths
#   make image-test     the same for the test variant (stand-ins, VM command channel): what the system and VM tiers boot
#   make image OUT=dir  build the tree into dir instead of the cache (the .deb lands as dir.deb)
#   make image DISK_OUT=dir   the disk into dir instead of the cache
IMAGE_CACHE ?= /var/cache/edge-agent-image
IMAGE_ARGS = --cache $(IMAGE_CACHE) $(if $(OUT),--out $(OUT)) $(if $(AIRGAP),--airgap $(AIRGAP))
DISK_ARGS = --cache $(IMAGE_CACHE) $(if $(DISK_OUT),--out $(DISK_OUT))

.PHONY: image image-test
image image-test: image%:
	@tree=$$(bash image/build.sh --variant $(if $*,test,production) $(IMAGE_ARGS)) && \
	  disk=$$(bash image/disk.sh "$$tree" $(DISK_ARGS)) && \
	  echo "tree: $$tree" && echo "deb:  $$tree.deb" && echo "disk: $$disk (qcow2: $${disk%.raw}.qcow2)"
