"""One module per `balance-tui` subcommand: `add_arguments(parser)` and `run(args, settings)`."""
