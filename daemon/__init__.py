"""adaptd daemon."""
