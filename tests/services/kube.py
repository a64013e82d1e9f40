"""pytest fixtures: see module owner."""
