"""The system under test: the feature query that turns a user id into a feature vector."""
