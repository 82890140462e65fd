"""The IDE's HTML pages, one module per area."""
