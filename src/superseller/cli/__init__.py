"""The `superseller` command line."""
