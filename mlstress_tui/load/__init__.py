"""The UI-free load engine: targets, workers, schedules and stats."""
