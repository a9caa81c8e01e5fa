"""The Modal provider, written against the `modal` SDK behind the thin `ModalPort`."""

from proliferate.sandbox.providers.modal.port import ModalPort, SdkModalPort
from proliferate.sandbox.providers.modal.provider import ModalProvider

__all__ = ["ModalPort", "ModalProvider", "SdkModalPort"]
