"""One module per main-window tab; each is testable on its own."""
