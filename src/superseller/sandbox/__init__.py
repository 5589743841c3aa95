"""A local imitation of the Mercado Livre API (`superseller sandbox serve`)."""
