"""castgate vendor plugin: antmedia (being written)."""
