"""The Textual dashboard: one front end of the load engine."""
