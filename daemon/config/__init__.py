"""The one Settings object: its sections, how it is loaded, and the docs generated from it."""
