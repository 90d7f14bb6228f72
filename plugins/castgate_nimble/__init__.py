"""castgate vendor plugin: nimble (being written)."""
