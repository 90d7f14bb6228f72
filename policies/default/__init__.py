"""castgate's shipped default policy, installed as package data so `castgate serve` finds it."""
