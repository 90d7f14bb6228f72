"""castgate vendor plugin: livepeer (being written)."""
