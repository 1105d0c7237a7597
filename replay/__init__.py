"""What-if replay of the log under a candidate ruleset, and the faithfulness check (SPEC §8)."""
