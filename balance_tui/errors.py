"""Errors a user can act on: shown as one line, never as a traceback."""


class UserError(Exception):
    """A problem explained in one line; `exit_code` is what the command returns."""

    exit_code = 1


class ConfigError(UserError):
    """A setting or flag has a value that is not allowed."""

    exit_code = 2


class BrokerUnreachable(UserError):
    """Nothing answers Kafka requests at the bootstrap servers."""

    exit_code = 3
