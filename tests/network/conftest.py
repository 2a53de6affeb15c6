from tests.runtime.conftest import make_box

__all__ = ["make_box"]  # the runtime tier's scratch boxes, for the stand-in k3s/k0s
