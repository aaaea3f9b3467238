"""Operator commands for a deployed stack (AWS or LocalStack): API keys and template seeding."""
