"""What a run leaves behind: summary.json and intervals.jsonl."""
