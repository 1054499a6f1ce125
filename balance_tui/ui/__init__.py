"""The Textual layer: app, screens and widgets. Fed only by messages from the worker."""
