"""One module per dashboard widget."""
