"""Users, passwords and login tokens."""
