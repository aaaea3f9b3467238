"""Adapters: the only modules that import boto3, kafka or httpx. They raise domain errors."""
