"""The box side of the fleet: identity, EST enrollment, membership, the mTLS remote API, the first-boot seed."""
