"""`crackdown data` (placeholder until its issue lands)."""


def register(subparsers) -> None:  # replaced by the module's owner
    pass
