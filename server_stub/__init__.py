"""The compact Pika backend: issues signed tokens, takes redemptions, shares them between tills."""
