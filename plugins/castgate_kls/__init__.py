"""castgate vendor plugin: kls (being written)."""
