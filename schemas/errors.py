class InvalidEvent(ValueError):
    """A record that cannot be accepted; ``reason`` says why in words an operator can act on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
