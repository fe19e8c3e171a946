"""The monthly voucher booklet: editions and placements, their layout, and the printed PDF."""
